import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const CLIENT_DIR = fileURLToPath(new URL('../../src/client/', import.meta.url));

test('src/client imports only its own files and eventsource-parser', () => {
  for (const file of readdirSync(CLIENT_DIR).filter((name) => name.endsWith('.ts'))) {
    const source = readFileSync(`${CLIENT_DIR}${file}`, 'utf8');
    for (const [, specifier] of source.matchAll(/\bfrom\s+'([^']+)'/g)) {
      assert.ok(specifier?.startsWith('./') || specifier === 'eventsource-parser', `${file} imports ${specifier}`);
    }
    assert.doesNotMatch(source, /\bimport\(|\brequire\(|\bprocess\.|\bBuffer\b/, `${file} uses a Node-only API`);
  }
});

test('the SDK bundles for the browser platform with no Node built-ins', async () => {
  const result = await build({
    entryPoints: [`${CLIENT_DIR}index.ts`],
    bundle: true,
    platform: 'browser',
    format: 'esm',
    write: false,
    logLevel: 'silent',
    metafile: true,
  });
  const inputs = Object.keys(result.metafile.inputs);
  assert.ok(
    inputs.every((path) => path.includes('src/client/') || path.includes('eventsource-parser')),
    inputs.join(', '),
  );
  const bundle = result.outputFiles[0]?.text ?? '';
  assert.ok(bundle.length > 1000);
  // Bundle size is part of the web client's budget: the minified SDK must stay small.
  const minified = await build({
    entryPoints: [`${CLIENT_DIR}index.ts`],
    bundle: true,
    platform: 'browser',
    format: 'esm',
    write: false,
    minify: true,
    logLevel: 'silent',
  });
  const bytes = minified.outputFiles[0]?.contents.length ?? 0;
  assert.ok(bytes < 40_000, `minified SDK is ${bytes} bytes`);
});
