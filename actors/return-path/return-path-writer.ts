/**
 * The destination's end of the return path (QEMU's migrate_send_rp_*): the
 * only writer of the main connection's reverse direction. Nothing is sent
 * until the source's stream asks for the path (OPEN_RETURN_PATH), nor after
 * it is closed.
 */
import type { Writable } from 'node:stream';
import { encodeReturnPath } from '../../protocols/return-path/encode.js';
import type { ReturnPathMessage } from '../../protocols/return-path/messages.js';

export class ReturnPathWriter {
  private opened = false;

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

  /** OPEN_RETURN_PATH: from here on messages go out. */
  open(): void {
    if (!this.reverse()) throw new Error('the source asked for a return path on a one-way channel');
    this.opened = true;
  }

  send(message: ReturnPathMessage): void {
    const reverse = this.reverse();
    if (!this.opened || !reverse || reverse.destroyed) return;
    reverse.write(encodeReturnPath(message));
    this.trace(message.type);
  }

  /** Ends the reverse direction once what was sent is written: the source reads the end as "no more". */
  close(): void {
    this.opened = false;
    this.reverse()?.end();
  }
}
