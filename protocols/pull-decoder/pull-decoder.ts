/**
 * The engine of a pull decoder: `want()` says where the next bytes must go,
 * `commit(n)` says n bytes arrived there. Each field of the format is a view
 * of exactly its size (a scratch buffer's start, or a view of guest memory),
 * so with `net.Socket`'s `onread: { buffer: () => d.want(), callback: (n) => d.commit(n) }`
 * the kernel copies each field, page bytes included, straight into place
 * (but for short fields read ahead, below). The main stream's and the
 * multifd channels' decoders build on it.
 *
 * Hot path: want/commit run once per socket read. They copy bytes only
 * when reading ahead (below), and allocate no more than a subarray for a
 * field shorter than its buffer or already partly filled. After any error
 * the decoder is failed for good: every later call rethrows that error.
 *
 * Reading ahead: a read per field costs a system call and two calls into
 * JS, which a short field cannot pay back. A guest's scattered dirty pages
 * come as runs of a few pages, and one read each nearly doubled the
 * destination's CPU for one-page runs (README, "Precopy"). So when what is
 * left of a field is short and the format says more bytes that decide
 * nothing follow (`bytesAhead()`), `want()` offers a scratch buffer for all
 * of them and `commit` copies them into place.
 */
/** What is left of a field below which the kernel does not read it into place alone. */
const DIRECT_READ_MIN = 64 * 1024;
/** The most bytes read ahead at once. */
const READ_AHEAD_MAX = 256 * 1024;

export abstract class PullDecoder {
  /** Where the current field's bytes go; undefined while the next one waits for `nextView()`. */
  private target: Uint8Array | undefined;
  /** Bytes of the current field in place. */
  protected filled = 0;
  private wanted = 0;
  private bytes = 0;
  /** The last `want()` offered `ahead` rather than the field itself. */
  private readingAhead = false;
  private ahead: Uint8Array | undefined;

  private failure: unknown;
  private failed = false;
  private ended = false;

  /** Bytes committed so far, hello included. */
  get bytesDecoded(): number {
    return this.bytes;
  }

  /**
   * A view where the next incoming bytes must go: what the current field
   * still needs, or scratch space for it and the bytes that follow it
   * (reading ahead, above). `readAhead` false: the caller holds the bytes
   * already (a chunk in memory), and reading ahead would only add a copy.
   */
  want(readAhead = true): Uint8Array {
    const view = this.fieldView();
    if (!readAhead || view.length >= DIRECT_READ_MIN) return view;
    const ahead = Math.min(this.bytesAhead(), READ_AHEAD_MAX);
    if (ahead <= view.length) return view;
    this.ahead ??= new Uint8Array(READ_AHEAD_MAX);
    this.readingAhead = true;
    this.wanted = ahead;
    return this.ahead.subarray(0, ahead);
  }

  /** `n` bytes were written at the start of the last `want()` view. */
  commit(n: number): void {
    this.checkOpen();
    if (!Number.isInteger(n) || n < 0 || n > this.wanted) {
      throw new RangeError(`commit(${n}) does not fit the last want() view of ${this.wanted} bytes`);
    }
    if (n === 0) return;
    if (this.readingAhead) {
      this.readingAhead = false;
      this.copyIn(this.ahead!.subarray(0, n));
      // What a stray second commit would claim went into the scratch buffer, not the field.
      this.wanted = 0;
    } else {
      this.commitField(n);
    }
  }

  /** Convenience for transports that hand over chunks: copies each chunk into place. */
  push(chunk: Uint8Array): void {
    this.checkOpen();
    this.copyIn(chunk);
  }

  /** What the current field still needs, as a view of it. */
  private fieldView(): Uint8Array {
    this.checkOpen();
    if (this.target === undefined) {
      try {
        this.target = this.nextView();
      } catch (error) {
        throw this.fail(error);
      }
      this.filled = 0;
    }
    // The field itself when nothing of it has arrived: for pages, the sink's own view.
    const view = this.filled === 0 ? this.target : this.target.subarray(this.filled);
    this.wanted = view.length;
    this.readingAhead = false;
    return view;
  }

  /** `n` bytes arrived at the start of the last `fieldView()`. */
  private commitField(n: number): void {
    this.wanted -= n;
    this.filled += n;
    this.bytes += n;
    try {
      this.committed(n);
      if (this.target !== undefined && this.filled === this.target.length) this.fieldComplete(this.target);
    } catch (error) {
      throw this.fail(error);
    }
  }

  /** Copies `chunk` field by field into place. */
  private copyIn(chunk: Uint8Array): void {
    for (let offset = 0; offset < chunk.length; ) {
      const view = this.fieldView();
      const n = Math.min(view.length, chunk.length - offset);
      view.set(chunk.subarray(offset, offset + n));
      offset += n;
      this.commitField(n);
    }
  }

  /** The connection ended: an error unless it ended between two units (frames, packets). */
  end(): void {
    this.checkOpen();
    this.ended = true;
    if (this.atBoundary()) return;
    throw this.fail(this.truncated());
  }

  /** The next field is `length` bytes at the start of `target`. */
  protected expect(target: Uint8Array, length: number): void {
    this.target = target.length === length ? target : target.subarray(0, length);
    this.filled = 0;
  }

  /** The next field is a view `nextView()` returns when bytes are wanted (a page run's next sink view). */
  protected expectView(): void {
    this.target = undefined;
  }

  /**
   * How many bytes, from the current position of the current field, belong
   * to fields that take them as they come (no field among them decides
   * where later bytes go): what a read may take at once. 0: none known.
   */
  protected bytesAhead(): number {
    return 0;
  }

  /** The view for a field left to `expectView()`. */
  protected abstract nextView(): Uint8Array;
  /** `n` more bytes of the current field arrived (before fieldComplete when they complete it). */
  protected abstract committed(n: number): void;
  /** The current field is full; set up the next one. */
  protected abstract fieldComplete(field: Uint8Array): void;
  /** Whether the input may end here. */
  protected abstract atBoundary(): boolean;
  /** The error for input that ends anywhere else. */
  protected abstract truncated(): Error;
  /** The error for input offered after the end. */
  protected abstract closed(): Error;

  private checkOpen(): void {
    if (this.failed) throw this.failure;
    if (this.ended) throw this.closed();
  }

  private fail(error: unknown): unknown {
    this.failed = true;
    this.failure = error;
    return error;
  }
}
