import { mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TEST_TMP } from './test-model.ts';

/** A key as tests write it: long enough for the file's rule, and easy to spot if it ever leaked into a log. */
export const testKey = (name: string) => `sk-test-${name}-SECRET-${'x'.repeat(12)}`;

/** An `--api-keys` file in a fresh temp folder; `write` replaces it the way editors save (rename over). */
export function keyFile(keys: Array<Record<string, unknown>>): { path: string; write: (text: string) => void } {
  const dir = mkdtempSync(join(TEST_TMP, 'keys-'));
  const path = join(dir, 'keys.json');
  const write = (text: string) => {
    writeFileSync(`${path}.tmp`, text);
    renameSync(`${path}.tmp`, path);
  };
  write(JSON.stringify({ keys }));
  return { path, write };
}

export const bearer = (name: string) => ({ authorization: `Bearer ${testKey(name)}` });
