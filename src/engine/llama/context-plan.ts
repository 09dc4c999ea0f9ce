import { availableParallelism, freemem } from 'node:os';
import type { Llama, LlamaModel } from 'node-llama-cpp';

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
