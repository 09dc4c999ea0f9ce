export interface StopMatch {
  stop: string;
}

export interface HoldbackResult {
  /** Text safe to emit now. */
  text: string;
  /** Set when a stop string completed: the generation ends, nothing after it is ever emitted. */
  match?: StopMatch;
}

/**
 * Finds stop strings in streamed text, including ones split across tokens. The longest tail that could
 * still grow into a stop string is held back, so a stop string (or its start) never leaks into a stream
 * and the streamed text always equals the final text.
 */
export class StopStringHoldback {
  private held = '';
  private readonly stops: string[];

  constructor(
    stops: readonly string[],
    private readonly trim: boolean,
  ) {
    this.stops = [...new Set(stops.filter((s) => s.length > 0))];
  }

  push(chunk: string): HoldbackResult {
    if (this.stops.length === 0) return { text: chunk };
    const buffer = this.held + chunk;
    let best: { index: number; stop: string } | undefined;
    for (const stop of this.stops) {
      const index = buffer.indexOf(stop);
      if (index >= 0 && (!best || index < best.index || (index === best.index && stop.length > best.stop.length)))
        best = { index, stop };
    }
    if (best) {
      this.held = '';
      const end = this.trim ? best.index : best.index + best.stop.length;
      return { text: buffer.slice(0, end), match: { stop: best.stop } };
    }
    const hold = this.longestStopPrefixSuffix(buffer);
    this.held = buffer.slice(buffer.length - hold);
    return { text: buffer.slice(0, buffer.length - hold) };
  }

  /** Releases held text when the generation ends for another reason. */
  flush(): string {
    const text = this.held;
    this.held = '';
    return text;
  }

  private longestStopPrefixSuffix(buffer: string): number {
    let longest = 0;
    for (const stop of this.stops) {
      for (let n = Math.min(stop.length - 1, buffer.length); n > longest; n--) {
        if (buffer.endsWith(stop.slice(0, n))) {
          longest = n;
          break;
        }
      }
    }
    return longest;
  }
}
