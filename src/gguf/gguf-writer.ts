import { closeSync, fsyncSync, openSync, renameSync, writeSync } from 'node:fs';
import {
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  GGUF_VERSION,
  GgmlType,
  type GgmlTypeName,
  type GgufMetadataValue,
  type GgufScalarType,
  GgufValueType,
} from './gguf-value-types.ts';
import { encodedTensorBytes, encodeTensor } from './tensor-encoding.ts';

export interface GgufTensor {
  name: string;
  /** ggml order: shape[0] is the contiguous (innermost) dimension. */
  shape: readonly number[];
  type: GgmlTypeName;
  /** Float weights, row-major with shape[0] contiguous; produced lazily so big models never sit in memory twice. */
  data: () => Float32Array;
}

export interface GgufDocument {
  metadata: ReadonlyArray<readonly [key: string, value: GgufMetadataValue]>;
  tensors: readonly GgufTensor[];
}

/** A growable little-endian byte builder for the header (metadata and tensor infos). */
class ByteSink {
  private buf = new Uint8Array(4096);
  private view = new DataView(this.buf.buffer);
  length = 0;

  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  u8(v: number) {
    this.reserve(1);
    this.view.setUint8(this.length, v);
    this.length += 1;
  }
  i8(v: number) {
    this.reserve(1);
    this.view.setInt8(this.length, v);
    this.length += 1;
  }
  u16(v: number) {
    this.reserve(2);
    this.view.setUint16(this.length, v, true);
    this.length += 2;
  }
  i16(v: number) {
    this.reserve(2);
    this.view.setInt16(this.length, v, true);
    this.length += 2;
  }
  u32(v: number) {
    this.reserve(4);
    this.view.setUint32(this.length, v, true);
    this.length += 4;
  }
  i32(v: number) {
    this.reserve(4);
    this.view.setInt32(this.length, v, true);
    this.length += 4;
  }
  f32(v: number) {
    this.reserve(4);
    this.view.setFloat32(this.length, v, true);
    this.length += 4;
  }
  f64(v: number) {
    this.reserve(8);
    this.view.setFloat64(this.length, v, true);
    this.length += 8;
  }
  u64(v: number | bigint) {
    this.reserve(8);
    this.view.setBigUint64(this.length, BigInt(v), true);
    this.length += 8;
  }
  i64(v: number | bigint) {
    this.reserve(8);
    this.view.setBigInt64(this.length, BigInt(v), true);
    this.length += 8;
  }
  bytes(b: Uint8Array) {
    this.reserve(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }
  string(s: string) {
    const b = new TextEncoder().encode(s);
    this.u64(b.length);
    this.bytes(b);
  }
  pad(alignment: number) {
    while (this.length % alignment !== 0) this.u8(0);
  }
  result(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
}

function writeScalar(sink: ByteSink, type: GgufScalarType, value: number | bigint | boolean | string): void {
  const writers: Record<GgufScalarType, () => void> = {
    uint8: () => sink.u8(Number(value)),
    int8: () => sink.i8(Number(value)),
    uint16: () => sink.u16(Number(value)),
    int16: () => sink.i16(Number(value)),
    uint32: () => sink.u32(Number(value)),
    int32: () => sink.i32(Number(value)),
    float32: () => sink.f32(Number(value)),
    float64: () => sink.f64(Number(value)),
    bool: () => sink.u8(value ? 1 : 0),
    string: () => sink.string(String(value)),
    uint64: () => sink.u64(value as number | bigint),
    int64: () => sink.i64(value as number | bigint),
  };
  writers[type]();
}

function alignmentOf(doc: GgufDocument): number {
  const entry = doc.metadata.find(([key]) => key === 'general.alignment');
  return entry ? Number(entry[1].value) : GGUF_DEFAULT_ALIGNMENT;
}

function alignUp(n: number, alignment: number): number {
  return Math.ceil(n / alignment) * alignment;
}

/** Serialises the header: magic, counts, metadata, tensor infos, and padding up to the data section. */
export function encodeGgufHeader(doc: GgufDocument): Uint8Array {
  const alignment = alignmentOf(doc);
  const sink = new ByteSink();
  sink.u32(GGUF_MAGIC);
  sink.u32(GGUF_VERSION);
  sink.u64(doc.tensors.length);
  sink.u64(doc.metadata.length);
  for (const [key, entry] of doc.metadata) {
    sink.string(key);
    sink.u32(GgufValueType[entry.type]);
    if (entry.type === 'array') {
      sink.u32(GgufValueType[entry.itemType]);
      sink.u64(entry.value.length);
      for (const item of entry.value) writeScalar(sink, entry.itemType, item);
    } else {
      writeScalar(sink, entry.type, entry.value);
    }
  }
  let offset = 0;
  for (const tensor of doc.tensors) {
    sink.string(tensor.name);
    sink.u32(tensor.shape.length);
    for (const dim of tensor.shape) sink.u64(dim);
    sink.u32(GgmlType[tensor.type]);
    sink.u64(offset);
    const elements = tensor.shape.reduce((a, b) => a * b, 1);
    offset = alignUp(offset + encodedTensorBytes(tensor.type, elements), alignment);
  }
  sink.pad(alignment);
  return sink.result();
}

/**
 * Writes a GGUF v3 file. The file appears atomically (temp file, fsync, rename), so a model that is
 * half-written when the process dies is never picked up as a valid model by the next start.
 */
export function writeGgufFile(path: string, doc: GgufDocument): void {
  const alignment = alignmentOf(doc);
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w');
  try {
    writeAll(fd, encodeGgufHeader(doc));
    for (const tensor of doc.tensors) {
      const data = tensor.data();
      const elements = tensor.shape.reduce((a, b) => a * b, 1);
      if (data.length !== elements) {
        throw new Error(`tensor ${tensor.name}: ${data.length} values for shape [${tensor.shape.join(', ')}]`);
      }
      const bytes = encodeTensor(tensor.type, data);
      writeAll(fd, bytes);
      const padding = alignUp(bytes.length, alignment) - bytes.length;
      if (padding) writeAll(fd, new Uint8Array(padding));
    }
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

function writeAll(fd: number, bytes: Uint8Array): void {
  let written = 0;
  while (written < bytes.length) written += writeSync(fd, bytes, written, bytes.length - written);
}
