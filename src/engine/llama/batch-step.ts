import { constants } from 'node:os';
import { join } from 'node:path';
import type { NativeStep } from './native-context.ts';
import { compiledLibrary, firstLine, type NativeBuild } from './native-library.ts';

/** What loading the native step came to: the step, or why it is not in use. */
export type BatchStep = { loaded: true; step: NativeStep } | { loaded: false; reason: string };

const NATIVE = join(import.meta.dirname, 'native');
const SOURCES = [join(NATIVE, 'batch-step.cc'), join(NATIVE, 'batch-step-napi.cc')];
const FLAGS = ['-O2', '-shared', '-fPIC', '-fvisibility=hidden', '-std=c++17'];
let outcome: BatchStep | undefined;

/**
 * Loads native/batch-step.cc and its N-API half (compiled on first use with the machine's C++ compiler, then cached), which
 * samples every slot of a batch inside node-llama-cpp's decode job: without it each generated token costs one
 * more libuv job per slot after the decode (0.33–0.47 ms a step measured), each a thread hop and a promise.
 * Must run before node-llama-cpp loads its addon and before persistent-threadpool.ts; once per process. Linux
 * only (RTLD_GLOBAL symbol interposition); `KINDLING_NATIVE_STEP=off` turns it off. Never throws: without a
 * compiler the engine samples as before, and the reason is returned for the log.
 */
export function enableBatchStep(): BatchStep {
  outcome ??=
    process.env.KINDLING_NATIVE_STEP === 'off'
      ? { loaded: false, reason: 'KINDLING_NATIVE_STEP=off' }
      : loadBatchStep();
  return outcome;
}

/** The loader itself, with the build's settings open to tests (a compiler that is missing, a fresh cache). */
export function loadBatchStep(build: Partial<Pick<NativeBuild, 'compiler' | 'cacheDirs'>> = {}): BatchStep {
  if (process.platform !== 'linux') return { loaded: false, reason: 'only built on Linux' };
  try {
    const compiler = build.compiler ?? process.env.CXX ?? 'c++';
    const library = compiledLibrary({
      sources: SOURCES,
      headers: [join(NATIVE, 'batch-step.h'), join(NATIVE, 'llama-batch.h')],
      compiler,
      flags: FLAGS,
      cacheDirs: build.cacheDirs,
    });
    const module = { exports: {} as Partial<NativeStep> & { interposing?: () => boolean } };
    process.dlopen(module, library, constants.dlopen.RTLD_NOW | constants.dlopen.RTLD_GLOBAL);
    const { plan, take, interposing } = module.exports;
    if (typeof plan !== 'function' || typeof take !== 'function' || typeof interposing !== 'function')
      return { loaded: false, reason: `${library} exports no plan, take and interposing` };
    // A library defining llama_decode loaded before this one (the thread pool's) would take node-llama-cpp's calls.
    if (!interposing()) return { loaded: false, reason: 'loaded after another llama_decode (the thread pool?)' };
    return { loaded: true, step: { plan, take } };
  } catch (error) {
    return { loaded: false, reason: firstLine(error) };
  }
}
