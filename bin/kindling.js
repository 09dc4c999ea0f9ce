#!/usr/bin/env node
// The `kindling` command (and `npm start`): runs the TypeScript CLI through tsx, so it works from a checkout
// with no build step. CommonJS (bin/package.json) so that the lines below run before anything uses libuv's
// thread pool: Node sizes that pool once, at its first use, and an ES module entry is already too late.
const { availableParallelism } = require('node:os');

// node-llama-cpp samples each sequence as its own libuv job; more libuv threads than cores only contend with
// the decoding threads. On 2 cores a pool of 2 streamed 4-9 % faster than Node's 4 at 1, 4 and 8 clients
// (bench/server-ab.ts --env-b UV_THREADPOOL_SIZE=2, docs/benchmarks.md). A value the user set wins.
if (!process.env.UV_THREADPOOL_SIZE) {
  process.env.UV_THREADPOOL_SIZE = String(Math.max(2, Math.min(4, availableParallelism())));
}

// V8 optimizes a function once it has run a budget of bytecode. Each token runs a few microseconds of many small
// functions (node-llama-cpp's evaluation loop and ours), and at the default budget much of it was still
// unoptimized after 30 generations: the event loop spent 17-23 % more CPU per token, which on a small machine is
// taken from the decoding threads (bench/token-cpu.ts and bench/server-ab.ts with the flag on one side, in
// docs/benchmarks.md). A flag the user passed to node wins.
if (!process.execArgv.some((arg) => arg.startsWith('--interrupt-budget'))) {
  require('node:v8').setFlagsFromString('--interrupt-budget=16000');
}

import('tsx/esm/api')
  .then(({ register }) => {
    register();
    return import('../src/cli/main.ts');
  })
  .catch((error) => {
    console.error(error);
    process.exit(1);
  });
