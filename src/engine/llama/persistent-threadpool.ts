import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';

/** What loading the pool library came to: attached pools can be counted, or why it is not in use. */
export type PersistentThreadpool = { loaded: true; attachedPools(): number } | { loaded: false; reason: string };

const SOURCE = join(import.meta.dirname, 'native', 'persistent-threadpool.c');
let outcome: PersistentThreadpool | undefined;

/**
 * Loads native/persistent-threadpool.c (compiled on first use with the machine's C compiler, then cached) so
 * that each llama.cpp context gets a persistent thread pool, as llama.cpp's own server gives its contexts; see
 * the C file for why. Must run before node-llama-cpp's first decode; once per process. Linux only (it relies on
 * RTLD_GLOBAL symbol interposition); `KINDLING_THREADPOOL=off` turns it off, for comparisons. Never throws: a
 * machine without a compiler decodes as before, and the reason is returned for the log.
 */
export function enablePersistentThreadpool(): PersistentThreadpool {
  outcome ??= load();
  return outcome;
}

function load(): PersistentThreadpool {
  if (process.platform !== 'linux') return { loaded: false, reason: 'only built on Linux' };
  if (process.env.KINDLING_THREADPOOL === 'off') return { loaded: false, reason: 'KINDLING_THREADPOOL=off' };
  try {
    const library = compiled();
    const module = { exports: {} as { attachedPools?: () => number } };
    process.dlopen(module, library, constants.dlopen.RTLD_NOW | constants.dlopen.RTLD_GLOBAL);
    const attachedPools = module.exports.attachedPools;
    if (typeof attachedPools !== 'function') return { loaded: false, reason: `${library} exports no attachedPools` };
    return { loaded: true, attachedPools };
  } catch (error) {
    return { loaded: false, reason: firstLine(error) };
  }
}

/** An error's first line: a compiler's or the loader's message can run to many. */
function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0] ?? '';
}

/** The compiled library for this source and architecture, compiling it if no cache holds it yet. */
function compiled(): string {
  const source = readFileSync(SOURCE);
  const hash = createHash('sha256').update(source).update(process.arch).digest('hex').slice(0, 16);
  const name = `persistent-threadpool-${hash}.so`;
  const dirs = [join(import.meta.dirname, '..', '..', '..', 'node_modules', '.cache', 'kindling'), tmpdir()];
  for (const dir of dirs) if (existsSync(join(dir, name))) return join(dir, name);
  let lastError: unknown;
  for (const dir of dirs) {
    // Several processes may compile at once (parallel test files): each writes its own file and renames it.
    const partial = join(dir, `${name}.${process.pid}.tmp`);
    try {
      mkdirSync(dir, { recursive: true });
      execFileSync(process.env.CC ?? 'cc', ['-O2', '-shared', '-fPIC', '-o', partial, SOURCE, '-ldl', '-lpthread'], {
        stdio: ['ignore', 'ignore', 'pipe'],
        timeout: 60_000,
      });
      renameSync(partial, join(dir, name));
      return join(dir, name);
    } catch (error) {
      rmSync(partial, { force: true });
      lastError = error;
    }
  }
  throw new Error(`could not compile ${SOURCE} with ${process.env.CC ?? 'cc'} (${firstLine(lastError)})`);
}
