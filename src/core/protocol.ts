import type { Answer } from './answer.ts';
import type { GenerationRequest } from './generation-request.ts';
import type { FinishedGeneration, GenerationView } from './generation-view.ts';
import type { KindlingError } from './kindling-error.ts';
import type { LoggedPart } from './logged-part.ts';
import type { ProtocolServices } from './protocol-services.ts';
import type { WireMessage } from './wire-message.ts';

/** What a route handler learns of its HTTP request: the validated body and nothing of the socket. */
export interface RouteInput<Body> {
  body: Body;
  params: Readonly<Record<string, string | undefined>>;
  headers: Readonly<Record<string, string | string[] | undefined>>;
  /** Whose generations this request's keys can reach and whose rate limits it spends. */
  principal: string;
  /** True when a password protects the server and this caller did not give it (open routes only). */
  anonymous: boolean;
  /** Aborts when the client leaves before its answer is written. */
  readonly clientGone: AbortSignal;
}

/** The parts of a route that the HTTP layer and the OpenAPI document read. */
export interface RouteShape {
  method: 'GET' | 'POST';
  /** One route, several paths (`/api/v1/generate` and `/api/latest/generate`). */
  paths: readonly string[];
  summary?: string;
  /** TypeBox schema of the body: validated before the handler runs, and documented at `/api`. */
  body?: object;
  /** Reachable without the server password (KoboldCpp's informational GETs). */
  open?: boolean;
  /** An empty or non-JSON body is read as `{}` instead of a 400 (Kobold's check and abort). */
  lenientBody?: boolean;
  /** Left out of the OpenAPI document (discovery routes other tools probe). */
  hidden?: boolean;
  /** A smaller body limit than the server's (bytes). */
  maxBodyBytes?: number;
}

/** A route that answers at once: a plain object is sent as JSON, an `Answer` as it says. */
export interface InfoRoute<Body = never> extends RouteShape {
  kind: 'info';
  handle(input: RouteInput<Body>): unknown;
}

/** A generation the protocol decoded, and how its answer goes out. */
interface PlanBase {
  request: GenerationRequest;
  /** The encoder family recorded on the generation: only a generation of the same one is ever resumed. */
  protocol: string;
  /**
   * The model the client named, where its protocol has the field. One node answers whatever it is named (as
   * KoboldCpp and llama-server do), and so does a fleet of one model; in a fleet of several, a name no live node
   * serves is a 404 naming them.
   */
  model?: string | undefined;
}

/** Streamed as the log grows, through the protocol's encoder. */
export interface StreamingPlan extends PlanBase {
  stream: {
    contentType?: 'text/event-stream' | 'application/x-ndjson';
    /** `Last-Event-ID` and a keyed re-send reattach to a running generation (see docs/architecture.md). */
    resumable: boolean;
    /** The client's pace: at most one event per this many ms (`stream_interval_ms`); the server may slow further. */
    intervalMs?: number | undefined;
    /** Built once the generation is known; `afterId` is where a resumed stream starts. */
    encoder(generation: GenerationView, afterId: number): (batch: readonly LoggedPart[]) => WireMessage[];
  };
}

/** Answered once, when the generation has finished (a failure is answered by the error envelope). */
export interface WaitingPlan extends PlanBase {
  respond(result: FinishedGeneration, generation: GenerationView): unknown;
}

export type GenerationPlan = StreamingPlan | WaitingPlan;

/**
 * A route that generates: the protocol decodes the body into a plan (or answers at once, e.g. Ollama's "loaded"
 * reply to an empty prompt), and the server's one pipeline submits or resumes, streams or waits, and encodes.
 */
export interface GenerationRoute<Body = never> extends RouteShape {
  kind: 'generation';
  method: 'POST';
  plan(input: RouteInput<Body>): Promise<GenerationPlan | Answer> | GenerationPlan | Answer;
}

// biome-ignore lint/suspicious/noExplicitAny: a table holds routes of every body type; each is checked on its own
export type ProtocolRoute = InfoRoute<any> | GenerationRoute<any>;

/**
 * One wire protocol, whole: adding a protocol is adding a folder under `src/protocols/` that exports one of
 * these, and a line in `src/protocols/registry.ts`.
 */
export interface ProtocolDescriptor {
  /** Short name (`kobold`, `openai`): logs and the route table. */
  name: string;
  /** The OpenAPI tag its routes are listed under. */
  tag: string;
  /**
   * Paths under these prefixes that match no route still answer their 404 in this protocol's envelope; the
   * longest matching prefix of all protocols wins.
   */
  pathPrefixes: readonly string[];
  /** The protocol's error envelope; `path` is the request's path without the query. */
  errorBody(error: KindlingError, path: string): Record<string, unknown>;
  /** Its routes, built once per server. */
  routes(services: ProtocolServices): readonly ProtocolRoute[];
}

/** Typed in one place so a route table reads as data: `generationRoute<Body>({...})`. */
export function generationRoute<Body>(route: Omit<GenerationRoute<Body>, 'kind' | 'method'>): GenerationRoute<Body> {
  return { kind: 'generation', method: 'POST', ...route };
}

export function infoRoute<Body = undefined>(route: Omit<InfoRoute<Body>, 'kind'>): InfoRoute<Body> {
  return { kind: 'info', ...route };
}
