import type { SourceReturnPath } from '../return-path/source-return-path.js';
import { abortable } from './abortable.js';

/**
 * How long the stream takes to drain: from the moment the source stops
 * handing out pages to the moment the destination has placed every one of
 * them. The switchover pays this on top of sending what is left (and it is
 * where compression and TLS hide their cost: the socket buffers hold
 * compressed or encrypted bytes the destination has yet to inflate or
 * decrypt), so the expected downtime and the threshold count it.
 *
 * Measured at each dirty sync, where the source ends the round anyway: a
 * PING after the round's end is answered only once the destination holds
 * the whole round (it handles the main channel's messages in order, and with
 * multifd a round's end waits for every channel to place its pages).
 */
export class PipelineDrain {
  /** The last drain measured, ms; undefined until one is. */
  ms: number | undefined;
  /** PING values of the probes in flight, and when their round stopped handing out pages. */
  private readonly probes = new Map<number, number>();
  private nextValue = FIRST_PROBE_VALUE;
  private answered: (() => void) | undefined;

  constructor(returnPath: SourceReturnPath) {
    returnPath.on('pong', (value: number) => {
      const from = this.probes.get(value);
      if (from === undefined) return;
      this.probes.clear();
      this.ms = performance.now() - from;
      this.answered?.();
    });
  }

  /**
   * Sends a probe for a round that stopped handing out pages at `from`
   * (performance.now()). Resolves once it is sent, or, while no drain has
   * been measured yet, once it is answered (for at most FIRST_ANSWER_MS):
   * the first switchover decision should not be taken blind.
   */
  async probe(from: number, sendPing: (value: number) => Promise<void>, signal: AbortSignal): Promise<void> {
    const value = this.nextValue++;
    this.probes.set(value, from);
    if (this.ms !== undefined) return sendPing(value);
    const answer = new Promise<void>((resolve) => (this.answered = resolve));
    await sendPing(value);
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<void>((resolve) => (timer = setTimeout(resolve, FIRST_ANSWER_MS)));
    try {
      await abortable(signal, Promise.race([answer, bound]));
    } finally {
      clearTimeout(timer);
      this.answered = undefined;
    }
  }
}

/** A destination that does not answer in this long leaves the decision to the bandwidth alone. */
const FIRST_ANSWER_MS = 1000;
/** Above the PING values the migration uses for itself (1 after the header, 4 after the postcopy package). */
const FIRST_PROBE_VALUE = 0x10000;
