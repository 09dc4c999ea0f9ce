import type { FastifyInstance } from 'fastify';
import { KindlingError } from '../../core/kindling-error.ts';
import { isAdmin } from '../access/request-identity.ts';
import { accessOf, type ServerContext } from '../server-context.ts';

/**
 * `GET /slots`: what each generation slot is doing, for the operator. Admin only: an `admin: true` key or the
 * `--password`; a server with neither is one user's own, whose slots are theirs to see. The fields follow
 * llama-server's `/slots` where the two agree (`id`, `n_ctx`, `is_processing`, `next_token.n_decoded`); the key is
 * shown by its name, never the key itself, and no prompt text is shown.
 */
export function registerSlotsRoute(app: FastifyInstance, context: ServerContext): void {
  const { scheduler, engine } = context;
  app.get('/slots', { schema: { hide: true } }, async (request) => {
    if (accessOf(context).required && !isAdmin(request))
      throw new KindlingError(
        'forbidden',
        'GET /slots needs an admin key (admin: true in --api-keys) or the --password.',
      );
    return scheduler.slotStates().map((slot) => ({
      id: slot.id,
      n_ctx: engine.model.contextSize,
      is_processing: slot.state !== 'idle',
      state: slot.state,
      ...(slot.state === 'idle'
        ? {}
        : {
            key: slot.principal.startsWith('key:') ? slot.principal.slice(4) : null,
            n_prompt_tokens: slot.promptTokens,
            next_token: { n_decoded: slot.generatedTokens },
            elapsed_ms: slot.elapsedMs,
          }),
    }));
  });
}
