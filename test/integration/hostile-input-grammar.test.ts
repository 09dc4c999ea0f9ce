/**
 * Hostile grammars and JSON schemas (issue 16, items 1 and 5): repeats whose min exceeds their max, a terminal
 * no token matches, non-object json_to_grammar bodies, schemas that forced null. Harness and rules:
 * test/support/hostile-harness.ts.
 */
import { chat, generate, type HostileCase, hostileTests, STREAM } from '../support/hostile-harness.ts';

const cases: HostileCase[] = [];

// 1. Grammar repeats whose min exceeds their max.
for (const repeat of ['{3,1}', '{1,0}', '{5,2}']) {
  for (const path of ['/api/v1/generate', STREAM]) {
    cases.push({
      name: `grammar "a"${repeat} on ${path}`,
      request: { path, body: generate({ grammar: `root ::= "a"${repeat}` }) },
      expect: 'rejected',
      mentions: /root/,
    });
  }
}

// 5. 500s from client input.
for (const body of ['123', '"s"', 'true']) {
  cases.push({
    name: `json_to_grammar with body ${body}`,
    request: { path: '/api/extra/json_to_grammar', body },
    expect: 'rejected',
  });
}
for (const path of ['/api/v1/generate', STREAM]) {
  cases.push({
    name: `grammar root ::= [\\x00] on ${path}`,
    request: { path, body: generate({ grammar: 'root ::= [\\x00]' }) },
    expect: 'rejected',
    mentions: /grammar/,
  });
}
for (const schema of [{ type: 'foo' }, { enum: [] }, { oneOf: [] }]) {
  const label = JSON.stringify(schema);
  cases.push(
    {
      name: `JSON schema ${label} through OpenAI response_format`,
      request: {
        path: '/v1/chat/completions',
        body: chat({ response_format: { type: 'json_schema', json_schema: { name: 'x', schema } } }),
      },
      expect: 'rejected',
    },
    {
      name: `JSON schema ${label} through json_to_grammar`,
      request: { path: '/api/extra/json_to_grammar', body: { schema } },
      expect: 'rejected',
    },
  );
}
hostileTests(cases);
