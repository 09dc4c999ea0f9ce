import type { RunningServer } from '../../src/main.ts';
import { withDeadline } from './deadline.ts';
import { koboldEvents } from './from-address.ts';
import { openStream, type StreamCapture } from './sse-capture.ts';
import { slowTestModelPath } from './test-model.ts';

/**
 * What the fleet tests that follow one keyed Kobold stream from node to node share: a node's settings, the
 * request body, and the text of a captured stream.
 */

/** A node with one slot of the slower model (~2 ms a token), so generations overlap long enough to watch. */
export const oneSlotNode = (redisUrl: string) =>
  ({ redisUrl, modelPath: slowTestModelPath(), contextSize: 2048, parallel: 1 }) as const;

/** The generated text of a captured Kobold SSE stream (its token events, in order). */
export const tokensOf = (text: string) =>
  koboldEvents(text)
    .map((e) => e.data?.token ?? '')
    .join('');

/** A keyed Kobold stream body whose end tokens are banned (`ban` from banEndTokens), so it runs its full length. */
export const keyedBody =
  (ban: Record<string, number>) =>
  (genkey: string, maxLength: number, seed = 7, prompt = 'Once upon a time') => ({
    prompt,
    max_length: maxLength,
    sampler_seed: seed,
    genkey,
    logit_bias: ban,
  });

export const streamTo = (node: RunningServer, body: unknown) =>
  openStream(`${node.url}/api/extra/generate/stream`, body);

/** The capture, once its stream has ended (a minute at most). */
export const finished = (stream: StreamCapture) =>
  withDeadline(stream.done, 60_000, 'a stream to end').then(() => stream);
