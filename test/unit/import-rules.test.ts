/**
 * The import rules of the layers table (docs/architecture.md), checked on every import of the repository: one
 * rule a line of the table, each with its reason. A failure names the file, the line, the import and the reason.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  cycleViolations,
  type Edge,
  type ImportRule,
  importEdges,
  matches,
  ruleViolations,
  sourceFiles,
} from '../support/import-graph.ts';
import { importSpecifiers } from '../support/import-specifiers.ts';

const RULES: ImportRule[] = [
  {
    name: 'core imports only core',
    files: ['src/core/'],
    onlyRepo: ['src/core/'],
    forbid: ['package:'],
    reason:
      'core is the vocabulary every layer shares, the SDK and the web client included; it depends on no layer and no package, or each of them would carry it',
  },
  {
    name: 'protocols import only core and protocols',
    files: ['src/protocols/'],
    onlyRepo: ['src/core/', 'src/protocols/'],
    reason:
      'a protocol turns wire JSON into core types and logged parts back into wire messages; it never sees the scheduler, the engine, the generation log or the server, so a protocol is added or tested alone',
  },
  {
    name: 'protocols/common imports only core and protocols/common',
    files: ['src/protocols/common/'],
    onlyRepo: ['src/core/', 'src/protocols/common/'],
    reason: 'what several protocols share cannot depend on one of them',
  },
  {
    name: 'the scheduler imports only core, engine and stream',
    files: ['src/scheduler/'],
    onlyRepo: ['src/core/', 'src/engine/', 'src/stream/', 'src/scheduler/'],
    reason:
      'the scheduler runs core requests from any protocol; its defaults are its own (scheduler-options.ts), and the config imports them, not the other way',
  },
  {
    name: 'the engine imports only core and engine',
    files: ['src/engine/'],
    onlyRepo: ['src/core/', 'src/engine/'],
    reason:
      'the engine decodes tokens for the jobs it is given; deciding what to run, and turning tokens into text, is above it',
  },
  {
    name: 'the stream imports only core and stream',
    files: ['src/stream/'],
    onlyRepo: ['src/core/', 'src/stream/'],
    reason: 'token text, stop strings and the generation log work on tokens and parts, for any engine and protocol',
  },
  {
    name: 'the fleet imports only core, stream, scheduler and fleet',
    files: ['src/fleet/'],
    onlyRepo: ['src/core/', 'src/stream/', 'src/scheduler/', 'src/fleet/'],
    reason:
      "the fleet shares one node's generations, queue and membership through Redis; the server asks it, never the other way",
  },
  {
    name: 'the Redis client only in src/fleet',
    files: ['src/', 'web/', 'bin/'],
    except: ['src/fleet/'],
    forbid: ['package:@redis/client'],
    reason: 'one folder speaks to Redis, so a single node never loads it and a client update is checked in one place',
  },
  {
    name: 'the config imports only core, gguf, engine and the scheduler defaults',
    files: ['src/config/'],
    onlyRepo: ['src/core/', 'src/gguf/', 'src/engine/', 'src/config/', 'src/scheduler/scheduler-options.ts'],
    reason:
      "the config turns flags into one ServerConfig; main.ts hands it to the layers, and the flags that are scheduler settings default to the scheduler's own defaults",
  },
  {
    name: 'gguf imports only core, gguf and engine',
    files: ['src/gguf/'],
    onlyRepo: ['src/core/', 'src/gguf/', 'src/engine/'],
    reason: 'the GGUF writer builds model files; nothing that serves them',
  },
  {
    name: 'only the composition imports the server',
    files: ['src/', 'web/', 'tools/', 'bin/'],
    except: ['src/main.ts', 'src/cli/', 'src/server/'],
    forbid: ['src/server/'],
    reason: 'the server is the outermost layer: main.ts composes it and the CLI starts it; nothing below it reaches up',
  },
  {
    name: 'nothing imports the composition',
    files: ['src/', 'web/', 'tools/'],
    except: ['src/cli/'],
    forbid: ['src/main.ts', 'src/cli/'],
    reason: 'main.ts and the CLI are the top; only bin/kindling.js and the CLI itself start them',
  },
  {
    name: 'the product never imports tools',
    files: ['src/', 'web/', 'bin/'],
    forbid: ['tools/'],
    reason:
      'the trainer and the model tools are for developers; the server, the SDK and the web client ship without them',
  },
  {
    name: 'the SDK imports only itself and core',
    files: ['src/client/'],
    onlyRepo: ['src/client/', 'src/core/'],
    reason: 'the SDK is published and bundled into the web client on its own; it cannot carry the server with it',
  },
  {
    name: "the SDK's Node transport imports only itself, the SDK and core",
    files: ['src/client-node/'],
    onlyRepo: ['src/client-node/', 'src/client/', 'src/core/'],
    reason: 'it is the SDK for Node users (HTTP/2, kept-alive connections); like the SDK it cannot carry the server',
  },
  {
    name: "undici only in the SDK's Node transport",
    files: ['src/', 'web/', 'bin/'],
    except: ['src/client-node/'],
    forbid: ['package:undici'],
    reason: "the server and the browser SDK use the platform's fetch; only the Node SDK needs undici's HTTP/2 agent",
  },
  {
    name: 'the web client imports only itself, the SDK index and core',
    files: ['web/src/'],
    onlyRepo: ['web/src/', 'src/client/index.ts', 'src/core/'],
    reason:
      "the web client runs in a browser and talks to the server only over HTTP, through the SDK's public surface (its index), like any other client",
  },
  {
    name: 'node-llama-cpp only in src/engine/llama',
    files: ['src/', 'web/', 'bin/'],
    except: ['src/engine/llama/'],
    forbid: ['package:node-llama-cpp'],
    reason:
      'one folder owns the native engine, so an update of node-llama-cpp is checked in one place (tests, benches and the model tools in tools/, which measure, compare or sample with it, may import it)',
  },
  {
    name: 'no Node built-ins in browser code',
    files: ['src/client/', 'web/src/', 'src/core/'],
    forbid: ['node:'],
    reason:
      'the SDK and the web client (and core, which both import) run in browsers, where node:* modules do not exist',
  },
];

/** Folders whose files may not import each other in a cycle, and whose first-level folders may not either. */
const CYCLE_ROOTS = ['src/', 'web/src/'];

test('the scanner finds every form of import, and none in comments, strings or templates', () => {
  const source = [
    "import a from './a.ts';",
    'import type { B } from "./b.ts";',
    "import {\n  c,\n  type D,\n} from './c.ts';",
    "import './side.ts';",
    "export { e } from './e.ts';",
    "export * as f from './f.ts';",
    "export type { G } from './g.ts';",
    'export const x = \'import y from "./no-1.ts"\';',
    "// import z from './no-2.ts'",
    "/* export * from './no-3.ts' */",
    // biome-ignore lint/suspicious/noTemplateCurlyInString: this is source text for the scanner, with a template in it
    "const t = `import q from './no-4.ts' ${`${1}`} import r from './no-5.ts'`;",
    "const re = /import from '.\\/no-6.ts'/g;",
    'const m = import.meta.url;',
    "const d = await import('./dynamic.ts');",
    "const o = { import: 'x', from: './no-7.ts' };",
    "import { from } from './h.ts';",
    "import * as ns from 'node:fs';",
  ].join('\n');
  assert.deepEqual(
    importSpecifiers(source).map((s) => `${s.line}:${s.specifier}`),
    ['1:./a.ts', '2:./b.ts', '6:./c.ts', '7:./side.ts', '8:./e.ts', '9:./f.ts', '10:./g.ts'].concat([
      '17:./dynamic.ts',
      '19:./h.ts',
      '20:node:fs',
    ]),
  );
});

test('each rule catches what it forbids and lets the rest through', () => {
  const edge = (from: string, to: string): Edge => ({ from, line: 1, specifier: to, to });
  const caught = ruleViolations(RULES, [
    edge('src/core/stream-part.ts', 'src/engine/engine.ts'),
    edge('src/core/gbnf-check.ts', 'package:typebox'),
    edge('src/protocols/openai/encode-stream.ts', 'src/stream/generation-log.ts'),
    edge('src/protocols/openai/decode.ts', 'src/core/generation-request.ts'),
    edge('src/protocols/openai/wire.ts', 'package:typebox'),
    edge('src/protocols/common/stop-sequences.ts', 'src/protocols/kobold/wire.ts'),
    edge('src/scheduler/scheduler.ts', 'src/config/server-config.ts'),
    edge('src/scheduler/generation-runner.ts', 'src/stream/text-pipeline.ts'),
    edge('src/engine/llama/llama-engine.ts', 'src/stream/text-pipeline.ts'),
    edge('src/engine/llama/llama-engine.ts', 'package:node-llama-cpp'),
    edge('src/stream/generation-log.ts', 'src/scheduler/generation.ts'),
    edge('src/config/server-config.ts', 'src/scheduler/scheduler-options.ts'),
    edge('src/config/server-config.ts', 'src/scheduler/scheduler.ts'),
    edge('src/gguf/llama-gguf.ts', 'src/config/model-file.ts'),
    edge('src/server/app.ts', 'src/cli/main.ts'),
    edge('src/cli/main.ts', 'src/server/app.ts'),
    edge('test/unit/x.test.ts', 'src/server/app.ts'),
    edge('src/server/app.ts', 'tools/train/train-main.ts'),
    edge('src/client/http-request.ts', 'node:http'),
    edge('web/src/state/connection.ts', 'src/client/index.ts'),
    edge('web/src/state/connection.ts', 'src/client/client-errors.ts'),
    edge('src/engine/token-cuts.ts', 'package:node-llama-cpp'),
  ]).map((v) => `${v.key.split(':')[0]}: ${v.key.split(' ').pop()}`);
  assert.deepEqual(caught, [
    'core imports only core: src/engine/engine.ts',
    'core imports only core: package:typebox',
    'protocols import only core and protocols: src/stream/generation-log.ts',
    'protocols/common imports only core and protocols/common: src/protocols/kobold/wire.ts',
    'the scheduler imports only core, engine and stream: src/config/server-config.ts',
    'the engine imports only core and engine: src/stream/text-pipeline.ts',
    'the stream imports only core and stream: src/scheduler/generation.ts',
    'the config imports only core, gguf, engine and the scheduler defaults: src/scheduler/scheduler.ts',
    'gguf imports only core, gguf and engine: src/config/model-file.ts',
    'nothing imports the composition: src/cli/main.ts',
    'the product never imports tools: tools/train/train-main.ts',
    'the web client imports only itself, the SDK index and core: src/client/client-errors.ts',
    'node-llama-cpp only in src/engine/llama: package:node-llama-cpp',
    'no Node built-ins in browser code: node:http',
  ]);
});

test('the cycle check finds file and folder cycles', () => {
  const edge = (from: string, to: string): Edge => ({ from, line: 1, specifier: to, to });
  const found = cycleViolations(
    [
      edge('src/a/one.ts', 'src/a/two.ts'),
      edge('src/a/two.ts', 'src/a/one.ts'),
      edge('web/src/state/s.ts', 'web/src/prompt/p.ts'),
      edge('web/src/prompt/q.ts', 'web/src/state/t.ts'),
      edge('src/b/x.ts', 'src/core/y.ts'),
    ],
    CYCLE_ROOTS,
  ).map((v) => v.key);
  assert.deepEqual(found.sort(), [
    'file cycle: src/a/one.ts, src/a/two.ts',
    'folder cycle: web/src/prompt → web/src/state',
    'folder cycle: web/src/state → web/src/prompt',
  ]);
});

test('imports follow the layers table', () => {
  const files = sourceFiles();
  const edges = importEdges(files);
  for (const rule of RULES) {
    // A rule about a folder that was renamed away would pass forever.
    assert.ok(
      files.some((f) => rule.files.some((p) => matches(f, p)) && !rule.except?.some((p) => matches(f, p))),
      `rule "${rule.name}" applies to no file`,
    );
  }
  assert.ok(edges.length > 500, `only ${edges.length} imports found`);
  const violations = [...ruleViolations(RULES, edges), ...cycleViolations(edges, CYCLE_ROOTS)];
  assert.deepEqual(
    violations.map((v) => v.message),
    [],
    'imports against the rules',
  );
});
