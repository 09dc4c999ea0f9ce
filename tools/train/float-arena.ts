import { linearKernelsModule } from './wasm-linear-kernels.ts';

type Kernel = (out: number, a: number, b: number, rows: number, inDim: number, outDim: number) => void;

/**
 * Float32Arrays carved out of one WebAssembly memory, so the SIMD kernels can work on them in place.
 * The memory never grows (growing would detach every view handed out), so once it is full, or where
 * WebAssembly SIMD is unavailable, `floats` returns ordinary arrays and the JS kernels take over.
 */
export class FloatArena {
  private used = 0;
  private constructor(
    readonly memory: WebAssembly.Memory,
    readonly kernels: { forward: Kernel; backward_input: Kernel; backward_weight: Kernel },
  ) {}

  static create(megabytes: number): FloatArena | null {
    try {
      const pages = Math.ceil((megabytes * 1024 * 1024) / 65536);
      const memory = new WebAssembly.Memory({ initial: pages, maximum: pages });
      const instance = new WebAssembly.Instance(new WebAssembly.Module(linearKernelsModule(pages)), {
        env: { memory },
      });
      return new FloatArena(memory, instance.exports as unknown as FloatArena['kernels']);
    } catch {
      return null;
    }
  }

  /** Zeroed floats, 16-byte aligned inside the arena when they fit. */
  floats(n: number): Float32Array {
    const bytes = Math.ceil((n * 4) / 16) * 16;
    if (this.used + bytes > this.memory.buffer.byteLength) return new Float32Array(n);
    const view = new Float32Array(this.memory.buffer, this.used, n);
    this.used += bytes;
    return view;
  }

  holds(a: Float32Array): boolean {
    return a.buffer === this.memory.buffer;
  }
}

let shared: FloatArena | null | undefined;

/** The process-wide arena (256 MiB of address space, touched only as it is used). */
export function sharedFloatArena(): FloatArena | null {
  if (shared === undefined) shared = FloatArena.create(256);
  return shared;
}

export function allocateFloats(n: number): Float32Array {
  return sharedFloatArena()?.floats(n) ?? new Float32Array(n);
}
