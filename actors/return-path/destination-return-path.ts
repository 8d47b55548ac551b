/**
 * The destination's end of the return path (QEMU's migrate_send_rp_*), as
 * an actor: the only writer of the main connection's reverse direction.
 * It runs the return path's statechart (machines/return-path.ts): nothing
 * is sent before the source's stream asks for the path (OPEN_RETURN_PATH),
 * nor after it is closed.
 */
import type { Writable } from 'node:stream';
import { createActor } from 'xstate';
import { returnPathMachine, returnPathState, type ReturnPathState } from '../../machines/return-path.js';
import { encodeReturnPath } from '../../protocols/return-path/encode.js';
import { traceLabel, type ReturnPathMessage } from '../../protocols/return-path/messages.js';

export class DestinationReturnPath {
  private readonly machine = createActor(returnPathMachine).start();

  /**
   * @param reverse the main connection's reverse direction, looked up at each use (the
   *   transport may move the connection to another socket object once reading starts);
   *   undefined for a one-way transport
   * @param trace told each message sent, for the visualizer
   */
  constructor(
    private readonly reverse: () => Writable | undefined,
    private readonly trace: (type: string) => void,
  ) {}

  get state(): ReturnPathState {
    return returnPathState(this.machine.getSnapshot());
  }

  /** OPEN_RETURN_PATH: from here on messages go out. */
  open(): void {
    if (!this.reverse()) throw new Error('the source asked for a return path on a one-way channel');
    this.machine.send({ type: 'open' });
  }

  send(message: ReturnPathMessage): void {
    const reverse = this.reverse();
    if (this.state !== 'open' || !reverse || reverse.destroyed) return;
    reverse.write(encodeReturnPath(message));
    const label = traceLabel(message);
    if (label) this.trace(label);
  }

  /** Postcopy paused: the path goes with its connection; a recovery opens a new one. */
  pause(why: string): void {
    this.machine.send({ type: 'pause', error: why });
    this.machine.stop();
  }

  /** Ends the reverse direction once what was sent is written: the source reads the end as "no more". */
  close(): void {
    this.machine.send({ type: 'shut' });
    this.machine.stop();
    this.reverse()?.end();
  }
}
