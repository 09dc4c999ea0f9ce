/**
 * The route fuzzing of test/integration/route-fuzz.test.ts with a long budget: every POST route the server
 * documents and the WebSocket messages, against `kindling serve` in its own process with the RSS watchdog
 * (1.5 GB). Prints the cases run, each property's failure with its shrunk counterexample, the servers the
 * cases broke (restarts) and the peak RSS. Exit code 1 when a property failed.
 *
 *   node --import tsx bench/fuzz.ts [--minutes 10] [--seed N] [--runs 1000000] [--only generate,ws]
 *     [-- extra serve flags]
 *
 * `--only` keeps the routes whose path contains one of the words (`ws`: the WebSocket property), to go on
 * fuzzing the rest once one route's failure is known.
 */
import { parseArgs } from 'node:util';
import { describeFailure, FuzzTarget, fuzzRoutes } from '../test/support/route-fuzz.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    minutes: { type: 'string', default: '10' },
    seed: { type: 'string', default: String(Date.now() % 2 ** 31) },
    runs: { type: 'string', default: '1000000' },
    only: { type: 'string' },
  },
});
const minutes = Number(values.minutes);
const seed = Number(values.seed);
if (!(minutes > 0) || !Number.isInteger(seed)) {
  console.error('usage: bench/fuzz.ts [--minutes N > 0] [--seed integer] [--runs N] [-- serve flags]');
  process.exit(2);
}

const target = new FuzzTarget(positionals);
const started = performance.now();
// The HTTP property gets the budget; the WebSocket one a quarter of it after (fuzzRoutes splits it so).
const budgetMs = (minutes * 60_000 * 4) / 5;
console.log(
  `fuzzing for ${minutes} min with seed ${seed}${positionals.length ? ` (serve ${positionals.join(' ')})` : ''}`,
);
try {
  const { http, ws } = await fuzzRoutes(target, {
    seed,
    numRuns: Number(values.runs),
    timeLimitMs: budgetMs,
    ...(values.only ? { only: values.only.split(',') } : {}),
  });
  const seconds = (performance.now() - started) / 1000;
  console.log(`\n${target.httpCases} HTTP cases and ${target.wsCases} WebSocket cases in ${seconds.toFixed(0)} s`);
  console.log(`servers replaced after a broken case: ${target.restarts}; peak RSS ${Math.round(target.peak())} MB`);
  const report = (name: string, details: typeof http | typeof ws, failure: string) =>
    console.log(
      details.failed
        ? `\n${name}: FAILED\n  ${failure}`
        : `${name}: passed ${details.numRuns} runs${details.interrupted ? ' (stopped at the time limit)' : ''}`,
    );
  // The whole counterexample: a person replays it with curl or wscat.
  report('HTTP', http, describeFailure(http, 100_000));
  report('WebSocket', ws, describeFailure(ws, 100_000));
  process.exitCode = http.failed || ws.failed ? 1 : 0;
} finally {
  await target.close();
}
