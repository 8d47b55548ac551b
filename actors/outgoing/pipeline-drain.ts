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
  /** The first probe went unanswered for FIRST_ANSWER_MS: decisions go on without a drain. */
  private givenUp = false;

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
   * The first probe is out and unanswered: the first switchover decision
   * should wait for it rather than be taken blind.
   */
  get firstPending(): boolean {
    return this.ms === undefined && this.probes.size > 0 && !this.givenUp;
  }

  /** Sends a probe for a round that stopped handing out pages at `from` (performance.now()). */
  probe(from: number, sendPing: (value: number) => Promise<void>): Promise<void> {
    const value = this.nextValue++;
    this.probes.set(value, from);
    return sendPing(value);
  }

  /**
   * Waits for the first probe's answer, for at most FIRST_ANSWER_MS: a
   * destination that does not answer leaves decisions to the bandwidth alone.
   */
  async firstAnswer(signal: AbortSignal): Promise<void> {
    if (!this.firstPending) return;
    let timer: NodeJS.Timeout | undefined;
    const answer = new Promise<void>((resolve) => (this.answered = resolve));
    const bound = new Promise<void>((resolve) => (timer = setTimeout(() => {
      this.givenUp = true;
      resolve();
    }, FIRST_ANSWER_MS)));
    try {
      await abortable(signal, Promise.race([answer, bound]));
    } finally {
      clearTimeout(timer);
      this.answered = undefined;
    }
  }
}

const FIRST_ANSWER_MS = 1000;
/** Above the PING values the migration uses for itself (1 after the header, 4 after the postcopy package). */
const FIRST_PROBE_VALUE = 0x10000;
