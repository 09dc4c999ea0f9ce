import { Answer } from '../../core/answer.ts';
import { infoRoute, type ProtocolRoute } from '../../core/protocol.ts';
import type { ProtocolServices } from '../../core/protocol-services.ts';
import { SAMPLING_LIMITS } from '../../core/sampling-limits.ts';
import { jsonSchemaGrammar } from '../common/json-schema-check.ts';
import { checkTokenIds } from '../common/token-ids.ts';
import { DetokenizeBody, TokenCountBody } from './wire.ts';

/** Token counting, detokenizing and KoboldCpp's JSON-schema-to-grammar converter. */
export function koboldTokenRoutes(services: ProtocolServices): ProtocolRoute[] {
  return [
    infoRoute<{ prompt: string; special?: boolean }>({
      method: 'POST',
      paths: ['/api/extra/tokencount', '/api/extra/tokenize'],
      summary: 'Count and list the tokens of a text',
      body: TokenCountBody,
      handle: async ({ body, clientGone }) => {
        const special = body.special ?? true;
        const ids = await services.countTokens(body.prompt, { special, addBos: special }, clientGone);
        return Answer.withIds({ value: ids.count }, ids);
      },
    }),
    infoRoute<{ ids: number[]; special?: boolean }>({
      method: 'POST',
      paths: ['/api/extra/detokenize'],
      summary: 'Token ids back to text',
      body: DetokenizeBody,
      // Millions of numbers cost JSON.parse ~0.4 s for 31 MB (a string of that size costs a tenth of it); the most
      // ids this route takes fit in a few MB, so a bigger body is refused before it is parsed.
      maxBodyBytes: SAMPLING_LIMITS.tokenIds * 8 + 65536,
      handle: async ({ body }) => {
        checkTokenIds('ids', body.ids, services.model.vocabularySize);
        return { result: await services.detokenize(body.ids, { special: body.special ?? true }), success: true };
      },
    }),
    infoRoute<unknown>({
      method: 'POST',
      paths: ['/api/extra/json_to_grammar'],
      summary: 'Convert a JSON schema to a GBNF grammar',
      handle: async ({ body }) => {
        // KoboldCpp takes {"schema": …} or the bare schema; a body that is not an object (123, "s", true, null, [])
        // is a 400 from the schema check, not a TypeError from `in`.
        const schema =
          typeof body === 'object' && body !== null && !Array.isArray(body) && 'schema' in body
            ? (body as { schema: unknown }).schema
            : body;
        const result = await jsonSchemaGrammar(schema, 'schema', (s) => services.jsonSchemaToGrammar(s));
        return { result, success: true };
      },
    }),
  ];
}
