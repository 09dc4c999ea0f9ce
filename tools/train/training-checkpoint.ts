import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';

const MAGIC = 'KNDLCKPT';

/**
 * A resumable training state: a JSON header (hyper-parameters, vocabulary, step, timings) followed by
 * named Float32 arrays (weights and Adam moments). Written to a temp file and renamed, so a run killed
 * mid-save still leaves the previous checkpoint intact.
 */
export interface TrainingCheckpoint<H> {
  header: H;
  arrays: Record<string, Float32Array>;
}

export function saveTrainingCheckpoint<H>(path: string, checkpoint: TrainingCheckpoint<H>): void {
  const names = Object.keys(checkpoint.arrays);
  const lengths = names.map((n) => (checkpoint.arrays[n] as Float32Array).length);
  const json = Buffer.from(JSON.stringify({ header: checkpoint.header, names, lengths }), 'utf8');
  // Pad the header so the float data starts 4-byte aligned and can be viewed without copying.
  const headerBytes = 8 + 4 + json.length;
  const pad = (4 - (headerBytes % 4)) % 4;
  const prefix = Buffer.alloc(headerBytes + pad, 0x20);
  prefix.write(MAGIC, 0, 'latin1');
  prefix.writeUInt32LE(json.length + pad, 8);
  json.copy(prefix, 12);
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, prefix);
    for (const name of names) {
      const a = checkpoint.arrays[name] as Float32Array;
      writeSync(fd, new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
    }
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

export function loadTrainingCheckpoint<H>(path: string): TrainingCheckpoint<H> {
  const buf = readFileSync(path);
  if (buf.toString('latin1', 0, 8) !== MAGIC) throw new Error(`${path} is not a Kindling training checkpoint`);
  const jsonLength = buf.readUInt32LE(8);
  const meta = JSON.parse(buf.toString('utf8', 12, 12 + jsonLength)) as {
    header: H;
    names: string[];
    lengths: number[];
  };
  let offset = 12 + jsonLength;
  const arrays: Record<string, Float32Array> = {};
  meta.names.forEach((name, i) => {
    const n = meta.lengths[i] as number;
    // Copy into a fresh buffer: the file buffer's byteOffset inside Node's pool need not be aligned.
    arrays[name] = new Float32Array(buf.buffer.slice(buf.byteOffset + offset, buf.byteOffset + offset + n * 4));
    offset += n * 4;
  });
  return { header: meta.header, arrays };
}
