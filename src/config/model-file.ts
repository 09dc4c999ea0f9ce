import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import { KindlingError } from '../core/kindling-error.ts';

/** Checks a model path before llama.cpp sees it, so a wrong path is one clear line, not a native stack trace. */
export function checkModelFile(path: string): void {
  if (!existsSync(path)) throw new KindlingError('bad_input', `Model file not found: ${path}`);
  if (!statSync(path).isFile()) throw new KindlingError('bad_input', `Model path is not a file: ${path}`);
  const fd = openSync(path, 'r');
  const magic = Buffer.alloc(4);
  try {
    readSync(fd, magic, 0, 4, 0);
  } finally {
    closeSync(fd);
  }
  if (magic.toString('latin1') !== 'GGUF') {
    throw new KindlingError(
      'bad_input',
      `${path} is not a GGUF model (llama.cpp models start with "GGUF"; this file starts with ${JSON.stringify(magic.toString('latin1'))}).`,
    );
  }
}
