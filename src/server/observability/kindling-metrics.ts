import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Engine } from '../../engine/engine.ts';
import type { Generation } from '../../scheduler/generation.ts';
import type { Scheduler } from '../../scheduler/scheduler.ts';
import type { SchedulerObserver } from '../../scheduler/scheduler-observer.ts';
import { keyNameOf } from './key-name.ts';

/** A request without an API key's priority runs as `interactive` (fair-queue.ts DEFAULT_QOS). */
const DEFAULT_PRIORITY = 'interactive';

/** Buckets in seconds: a token every few ms on a GPU to a second on a slow CPU. */
const TOKEN_GAP_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.25, 0.5, 1];
const FIRST_TOKEN_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const QUEUE_WAIT_BUCKETS = [0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

/** What one HTTP request adds to the metrics once its response is over (request-log.ts). */
export interface RequestFigures {
  route: string;
  protocol: string;
  status: number;
  /** The error code of a refused request (`queue_full`, `rate_limited`, …), for the 429/503 counter. */
  code: string | undefined;
  disconnected: boolean;
  resumed: boolean;
}

/**
 * Every metric of `/metrics`, in a registry of its own (never prom-client's global one: two servers in one process,
 * as in the tests, must not share counters). It is the scheduler's observer: generation figures come from there,
 * request figures from the request log, and the gauges are read from the scheduler and engine at scrape time.
 */
export class KindlingMetrics implements SchedulerObserver {
  readonly registry = new Registry();
  private readonly requests = this.counter('kindling_http_requests_total', 'HTTP requests answered', [
    'route',
    'protocol',
    'status',
  ]);
  private readonly rejected = this.counter(
    'kindling_http_rejected_total',
    'Requests refused with 429 (rate limits) or 503 (queue full, shutting down), by error code',
    ['status', 'code'],
  );
  private readonly disconnects = this.counter(
    'kindling_client_disconnects_total',
    'Responses whose client left before the response was complete',
    ['protocol'],
  );
  private readonly resumes = this.counter(
    'kindling_stream_resumes_total',
    'Streams that reattached to a running or finished generation (Last-Event-ID or a keyed re-send)',
    ['protocol'],
  );
  private readonly generations = this.counter('kindling_generations_total', 'Generations ended, by stop reason', [
    'key',
    'protocol',
    'stop_reason',
  ]);
  private readonly aborts = this.counter(
    'kindling_generation_aborts_total',
    'Generations aborted, by cause: client (abort request), disconnect (no reader left), timeout, shutdown',
    ['cause'],
  );
  private readonly promptTokens = this.counter(
    'kindling_prompt_tokens_total',
    'Prompt tokens of ended generations (cached ones included)',
    ['key'],
  );
  private readonly cachedPromptTokens = this.counter(
    'kindling_prompt_tokens_cached_total',
    "Prompt tokens served from a slot's KV cache instead of being evaluated",
    ['key'],
  );
  private readonly generatedTokens = this.counter('kindling_generated_tokens_total', 'Tokens generated', ['key']);
  private readonly firstTokenSeconds = new Histogram({
    name: 'kindling_time_to_first_token_seconds',
    help: "From a generation's admission to the queue to its first token (queue wait and prompt evaluation)",
    buckets: FIRST_TOKEN_BUCKETS,
    registers: [this.registry],
  });
  private readonly tokenGapSeconds = new Histogram({
    name: 'kindling_inter_token_seconds',
    help: 'Time between two consecutive tokens of one generation',
    buckets: TOKEN_GAP_BUCKETS,
    registers: [this.registry],
  });
  private readonly queueWaitSeconds = new Histogram({
    name: 'kindling_queue_wait_seconds',
    help: 'Time a generation waited for a slot',
    labelNames: ['priority'],
    buckets: QUEUE_WAIT_BUCKETS,
    registers: [this.registry],
  });

  /** Binds the scrape-time gauges to the server they describe (the scheduler is built after the metrics). */
  watch(scheduler: Scheduler, engine: Engine, info: { version: string; model: string }): void {
    const registers = [this.registry];
    new Gauge({
      name: 'kindling_queue_depth',
      help: 'Requests waiting for a slot',
      labelNames: ['priority'],
      registers,
      collect() {
        for (const [priority, count] of Object.entries(scheduler.queueByPriority)) this.set({ priority }, count);
      },
    });
    new Gauge({
      name: 'kindling_slots_busy',
      help: 'Generation slots running a generation',
      registers,
      collect() {
        this.set(scheduler.busySlots);
      },
    });
    new Gauge({
      name: 'kindling_slots',
      help: 'Generation slots (--parallel)',
      registers,
      collect() {
        this.set(scheduler.slotCount);
      },
    });
    new Gauge({
      name: 'kindling_kv_cache_tokens',
      help: "Tokens held in the slots' KV caches (the sum over slots)",
      registers,
      collect() {
        let tokens = 0;
        for (let slot = 0; slot < engine.slotCount; slot++) tokens += engine.cachedTokens(slot).length;
        this.set(tokens);
      },
    });
    new Gauge({
      name: 'kindling_info',
      help: 'Always 1: the server version and the model it serves, as labels',
      labelNames: ['version', 'model'],
      registers,
    }).set(info, 1);
  }

  /** The Prometheus text exposition of every metric. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  request(figures: RequestFigures): void {
    this.requests.inc({ route: figures.route, protocol: figures.protocol, status: String(figures.status) });
    if ((figures.status === 429 || figures.status === 503) && figures.code)
      this.rejected.inc({ status: String(figures.status), code: figures.code });
    if (figures.disconnected) this.disconnects.inc({ protocol: figures.protocol });
    if (figures.resumed) this.resumes.inc({ protocol: figures.protocol });
  }

  started(generation: Generation): void {
    const waited = ((generation.startedAt ?? generation.createdAt) - generation.createdAt) / 1000;
    this.queueWaitSeconds.observe({ priority: generation.origin.qos?.priority ?? DEFAULT_PRIORITY }, waited);
  }

  firstToken(_generation: Generation, seconds: number): void {
    this.firstTokenSeconds.observe(seconds);
  }

  tokenGap(seconds: number): void {
    this.tokenGapSeconds.observe(seconds);
  }

  finished(generation: Generation): void {
    const key = keyNameOf(generation.origin.principal);
    const last = generation.log.last;
    const stopReason = last?.type === 'finish' ? last.reason : 'error';
    this.generations.inc({ key, protocol: generation.origin.protocol, stop_reason: stopReason });
    if (generation.abortCause) this.aborts.inc({ cause: generation.abortCause });
    if (last?.type !== 'finish') return;
    this.promptTokens.inc({ key }, last.usage.promptTokens);
    this.cachedPromptTokens.inc({ key }, last.usage.cachedPromptTokens);
    this.generatedTokens.inc({ key }, last.usage.completionTokens);
  }

  private counter(name: string, help: string, labelNames: string[]): Counter<string> {
    return new Counter({ name, help, labelNames, registers: [this.registry] });
  }
}
