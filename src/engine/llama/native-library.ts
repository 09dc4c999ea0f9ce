import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, extname, join } from 'node:path';

export interface NativeBuild {
  /** Source files under native/, compiled into one library named after the first. */
  sources: readonly string[];
  /** Files the sources include: the cache key covers them too. */
  headers?: readonly string[];
  /** The compiler's command (an environment variable may name another). */
  compiler: string;
  flags: readonly string[];
  /** Where the compiled library is looked for, then written; the first writable one is used. */
  cacheDirs?: readonly string[] | undefined;
}

const DEFAULT_CACHE_DIRS = [
  join(import.meta.dirname, '..', '..', '..', 'node_modules', '.cache', 'kindling'),
  tmpdir(),
];

/**
 * The compiled library for this source, compiler, flags and architecture, compiling it if no cache holds it yet: a
 * start after the first one costs a hash of the source, not a compile.
 */
export function compiledLibrary(build: NativeBuild): string {
  const hash = createHash('sha256');
  for (const file of [...build.sources, ...(build.headers ?? [])]) hash.update(readFileSync(file));
  const key = hash.update(process.arch).update(build.flags.join(' ')).update(build.compiler).digest('hex').slice(0, 16);
  const first = build.sources[0] ?? '';
  const name = `${basename(first, extname(first))}-${key}.so`;
  const dirs = build.cacheDirs ?? DEFAULT_CACHE_DIRS;
  for (const dir of dirs) if (existsSync(join(dir, name))) return join(dir, name);
  let lastError: unknown;
  for (const dir of dirs) {
    // Several processes may compile at once (parallel test files): each writes its own file and renames it.
    const partial = join(dir, `${name}.${process.pid}.tmp`);
    try {
      mkdirSync(dir, { recursive: true });
      execFileSync(build.compiler, [...build.flags, '-o', partial, ...build.sources, '-ldl', '-lpthread'], {
        stdio: ['ignore', 'ignore', 'pipe'],
        timeout: 120_000,
      });
      renameSync(partial, join(dir, name));
      return join(dir, name);
    } catch (error) {
      rmSync(partial, { force: true });
      lastError = error;
    }
  }
  throw new Error(`could not compile ${first} with ${build.compiler} (${firstLine(lastError)})`);
}

/** An error's first line: a compiler's or the loader's message can run to many. */
export function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0] ?? '';
}
