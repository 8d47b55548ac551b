/**
 * Splits a QMP byte stream into lines, holding at most `maxLineBytes` of an
 * unfinished line. A line that grows past the bound is reported once, as
 * soon as it crosses it, and its bytes are dropped up to the next newline:
 * an oversized line is never buffered whole, and the stream stays usable.
 *
 * Lines are returned without their `\n` (a trailing `\r` is left to the
 * JSON decoder, which treats it as whitespace).
 */

/** What the framer found in the bytes pushed so far. */
export type LineEvent = { kind: 'line'; bytes: Buffer } | { kind: 'oversized'; limit: number };

export class LineFramer {
  /** Pieces of the unfinished line; subarrays of the pushed chunks, copied only when joined. */
  private parts: Buffer[] = [];
  private buffered = 0;
  /** Inside an oversized line: drop bytes until its newline. */
  private discarding = false;

  constructor(readonly maxLineBytes: number) {
    if (!Number.isSafeInteger(maxLineBytes) || maxLineBytes < 1) {
      throw new RangeError(`maxLineBytes must be a positive integer, got ${maxLineBytes}`);
    }
  }

  push(chunk: Buffer): LineEvent[] {
    const events: LineEvent[] = [];
    let offset = 0;
    while (offset < chunk.length) {
      const newline = chunk.indexOf(0x0a, offset);
      const end = newline === -1 ? chunk.length : newline;
      const piece = chunk.subarray(offset, end);
      if (this.discarding) {
        if (newline !== -1) this.discarding = false;
      } else if (this.buffered + piece.length > this.maxLineBytes) {
        events.push({ kind: 'oversized', limit: this.maxLineBytes });
        this.parts = [];
        this.buffered = 0;
        this.discarding = newline === -1;
      } else if (newline === -1) {
        this.parts.push(piece);
        this.buffered += piece.length;
      } else {
        events.push({ kind: 'line', bytes: this.take(piece) });
      }
      offset = end + 1;
    }
    return events;
  }

  /** Bytes of the unfinished line held right now (never more than maxLineBytes). */
  get pendingBytes(): number {
    return this.buffered;
  }

  private take(last: Buffer): Buffer {
    const line = this.parts.length === 0 ? last : Buffer.concat([...this.parts, last]);
    this.parts = [];
    this.buffered = 0;
    return line;
  }
}
