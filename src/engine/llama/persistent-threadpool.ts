import { constants } from 'node:os';
import { join } from 'node:path';
import { compiledLibrary, firstLine } from './native-library.ts';

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
    const library = compiledLibrary({
      sources: [SOURCE],
      headers: [join(import.meta.dirname, 'native', 'llama-batch.h')],
      compiler: process.env.CC ?? 'cc',
      flags: ['-O2', '-shared', '-fPIC'],
    });
    const module = { exports: {} as { attachedPools?: () => number } };
    process.dlopen(module, library, constants.dlopen.RTLD_NOW | constants.dlopen.RTLD_GLOBAL);
    const attachedPools = module.exports.attachedPools;
    if (typeof attachedPools !== 'function') return { loaded: false, reason: `${library} exports no attachedPools` };
    return { loaded: true, attachedPools };
  } catch (error) {
    return { loaded: false, reason: firstLine(error) };
  }
}
