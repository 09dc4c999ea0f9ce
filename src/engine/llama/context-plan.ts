import { availableParallelism, freemem } from 'node:os';
import type { Llama, LlamaModel } from 'node-llama-cpp';
import type { Adjustment } from '../../core/model-info.ts';

/** How the engine sets up its one llama.cpp context: how many slots, and when a slot's next decode starts. */

/**
 * Whether a slot's next decode should wait for the socket writes of the turn that produced its token, or start
 * at once beside them. It waits only where the decoding threads take every core and spin between decodes: a
 * CPU-only binary built with OpenMP (`npm run build:engine`). JS beside a decode then takes cycles from it, and
 * the short pause costs less (a single stream 9 % faster than starting at once). Elsewhere the decoding threads
 * sleep between decodes: the prebuilt CPU binaries, whose pool (persistent-threadpool.ts) does not poll, or
 * which create their threads per decode without it. There a pause before a decode costs more than itself:
 * starting at once was 15 % faster without the pool and 7 % with it (with ggml's polling pool, which spins, it
 * was 10 % slower). Measured with alternating server builds (bench/server-ab.ts) on 2026-12-01 and 2026-12-02.
 */
export function releaseAfterTurn(llama: Llama, model: LlamaModel, threads: number): boolean {
  const onCpu = llama.gpu === false || model.gpuLayers === 0;
  return onCpu && /OPENMP = 1/.test(llama.systemInfo) && threads >= availableParallelism();
}

/** A setting the engine runs with, and why it differs from what was asked (no `adjustment` when it does not). */
export interface Planned {
  value: number;
  adjustment?: Adjustment;
}

/** The smallest context the engine gives a model that claims less (some GGUFs say 0 or a tiny number). */
const MIN_CONTEXT = 256;

/**
 * A context longer than the model was trained on only produces noise past the trained length, so it is lowered
 * to that, and the start line says so: a user who asked for 8192 must not find out from truncated chats.
 */
export function planContextSize(requested: number, trainContextSize: number): Planned {
  const limit = Math.max(trainContextSize, MIN_CONTEXT);
  if (requested <= limit) return { value: requested };
  return {
    value: limit,
    adjustment: { setting: 'contextSize', requested, used: limit, reason: 'the context the model was trained on' },
  };
}

/** More decoding threads than cores make every decode wait for descheduled threads (about 300× slower here). */
export function planThreads(requested: number, cores: number = availableParallelism()): Planned {
  if (requested <= cores) return { value: requested };
  return {
    value: cores,
    adjustment: {
      setting: 'threads',
      requested,
      used: cores,
      reason: 'the cores of this machine (more threads than cores decode far slower)',
    },
  };
}

/** Slots used when `--parallel` is not given. */
const AUTO_SLOTS_MAX = 4;

/**
 * The default slot count: 4 (where batching several sequences pays off on most machines) when four
 * slots' KV caches fit in half of the memory that is free now (VRAM when layers are offloaded, RAM
 * otherwise), else as many as fit, and at least 1.
 */
export async function autoSlotCount(llama: Llama, model: LlamaModel, contextSize: number): Promise<number> {
  const perSlot = await model.fileInsights.estimateContextResourceRequirementsV2({
    contextSize,
    modelGpuLayers: model.gpuLayers,
    sequences: 1,
  });
  const onGpu = model.gpuLayers > 0;
  const free = onGpu ? (await llama.getVramState()).free : freemem();
  const bytes = Math.max(1, onGpu ? perSlot.gpuVram : perSlot.cpuRam);
  return Math.max(1, Math.min(AUTO_SLOTS_MAX, Math.floor((free * 0.5) / bytes)));
}
