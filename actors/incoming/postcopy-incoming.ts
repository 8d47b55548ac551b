/**
 * The destination's side of postcopy (QEMU's incoming postcopy-ram.c):
 * it checks the source's advice, drops the pages the discard list names,
 * unpacks the package, and from POSTCOPY_LISTEN on has the guest's page
 * faults turned into page requests (by a PageRequester on the return path,
 * or by the postcopy-preempt thread on its own connection) until every page
 * is in.
 */
import type { PostcopyAdviseMessage, PostcopyDiscardMessage, StreamMessage } from '../../protocols/stream/messages.js';
import { StreamDecoder } from '../../protocols/stream/decode.js';
import { TARGET_PAGE_SIZE } from '../guest/constants.js';
import type { Guest } from '../guest/guest.js';
import type { RamBlock } from '../guest/ram-block.js';
import type { GuestSink } from '../ram/guest-sink.js';
import type { FaultHandler } from '../return-path/page-requester.js';

/** What a package may hold: the switch itself, its PING, and device state. */
const PACKAGE_TYPES: ReadonlySet<StreamMessage['type']> = new Set(['postcopy-listen', 'ping', 'device', 'postcopy-run']);

export class PostcopyIncoming {
  private advised = false;
  private listening = false;
  /** POSTCOPY_LISTEN came (it stays true once postcopy is over). */
  listened = false;
  private running = false;
  /** The package is loaded and its last PING answered: the source may have sent POSTCOPY_RUN. */
  private committed = false;

  constructor(
    private readonly guest: Guest,
    private sink: GuestSink,
    private faults: FaultHandler,
    private readonly postcopyRam: () => boolean,
  ) {}

  /** Page requests sent. */
  get requests(): number {
    return this.faults.requests;
  }

  get isListening(): boolean {
    return this.listening;
  }

  /** POSTCOPY_RUN came and the stream is not over: the guest runs here, and only here. */
  get isRunning(): boolean {
    return this.running;
  }

  /**
   * From the package's answer until the stream's end: the source may have
   * committed the guest here (it sends POSTCOPY_RUN only once it heard that
   * answer), so a failure must pause, not fail, even before RUN arrives.
   */
  get isCommitted(): boolean {
    return this.committed;
  }

  /** The whole package is loaded (its closing PING answered). */
  packageLoaded(): void {
    this.committed = true;
  }

  /** POSTCOPY_RUN: the guest runs here from now on. */
  run(): void {
    this.running = true;
  }

  /** POSTCOPY_ADVISE (loadvm_postcopy_handle_advise's checks). */
  advise(message: PostcopyAdviseMessage): void {
    if (!this.postcopyRam()) {
      throw new Error('RAM postcopy is disabled but have 16 byte advise: turn postcopy-ram on at the destination too, before incoming starts');
    }
    if (message.hostPageSize !== TARGET_PAGE_SIZE || message.targetPageSize !== TARGET_PAGE_SIZE) {
      throw new Error(`Postcopy needs matching RAM page sizes (s=${message.hostPageSize} d=${TARGET_PAGE_SIZE})`);
    }
    this.advised = true;
  }

  /** POSTCOPY_RAM_DISCARD: the named pages are stale here, so they are fetched again when touched. */
  discard(message: PostcopyDiscardMessage, blocks: readonly RamBlock[]): void {
    if (!this.advised) throw new Error('Received a postcopy discard list without POSTCOPY_ADVISE');
    const ram = blocks[message.block];
    if (!ram) throw new Error(`Postcopy discard list names block ${message.block}, but the stream has ${blocks.length} blocks`);
    const { firstPage, bitmap } = message;
    if (firstPage % 32 !== 0 || firstPage + bitmap.length * 8 > roundUp32(ram.pageCount)) {
      throw new Error(`Postcopy discard list for '${ram.name}' covers pages ${firstPage}+${bitmap.length * 8}, past its ${ram.pageCount} pages`);
    }
    for (let byte = 0; byte < bitmap.length; byte++) {
      const bits = bitmap[byte]!;
      if (bits === 0) continue;
      for (let bit = 0; bit < 8; bit++) {
        if ((bits & (1 << bit)) === 0) continue;
        const page = firstPage + byte * 8 + bit;
        if (page >= ram.pageCount) throw new Error(`Postcopy discard list for '${ram.name}' names page ${page}, past its ${ram.pageCount} pages`);
        ram.received.clear(page);
        ram.placing.clear(page);
      }
    }
  }

  /** PACKAGED: the messages it holds, checked whole before any of them acts. */
  unpack(data: Uint8Array): StreamMessage[] {
    if (!this.advised) throw new Error('Received a postcopy package without POSTCOPY_ADVISE');
    const messages: StreamMessage[] = [];
    const decoder = new StreamDecoder({
      sink: { pageView: noPages, pagesLoaded: noPages, zeroPages: noPages },
      expectHello: false,
      onMessage: (m) => messages.push(m),
    });
    decoder.push(data);
    decoder.end();
    const odd = messages.find((m) => !PACKAGE_TYPES.has(m.type));
    if (odd) throw new Error(`Unexpected '${odd.type}' message in the postcopy package`);
    if (messages[0]?.type !== 'postcopy-listen') throw new Error('The postcopy package must start with POSTCOPY_LISTEN');
    const run = messages.findIndex((m) => m.type === 'postcopy-run');
    if (run !== -1 && run !== messages.length - 1) throw new Error('POSTCOPY_RUN may only end a postcopy package');
    return messages;
  }

  /**
   * POSTCOPY_LISTEN: from here every access to a page not yet in faults, and
   * faults become requests. They are looked for after every page placement
   * as well as when a fault wakes the handler: while pages stream in back to
   * back, the main thread may not get to the handler's wake-up for a while.
   */
  listen(): void {
    this.sink.startPostcopy(() => this.faults.poll());
    this.guest.setPostcopy(true);
    this.listening = true;
    this.listened = true;
    this.faults.start();
  }

  /**
   * The stream's end: every page must be in (the source sent each one it had),
   * after which the guest runs without fault checks.
   */
  complete(blocks: readonly RamBlock[]): void {
    for (const ram of blocks) {
      const missing = ram.pageCount - ram.received.count();
      if (missing > 0) throw new Error(`Postcopy ended with ${missing} pages of '${ram.name}' never received`);
    }
    this.stop();
    this.running = false;
    this.committed = false;
    this.guest.setPostcopy(false);
  }

  /** Stops handling faults (a pause: the vCPUs wait on theirs until a recovery resumes). */
  stop(): void {
    this.listening = false;
    this.faults.stop();
  }

  /**
   * Recovery: pages now come on a new connection, into `sink`, and `faults`
   * (the same handler, or a new preempt thread) takes the guest's faults.
   */
  reconnect(sink: GuestSink, faults: FaultHandler): void {
    this.sink = sink;
    this.faults = faults;
    sink.startPostcopy(() => this.faults.poll());
  }

  /**
   * POSTCOPY_RESUME: faults are handled again, those the vCPUs already wait
   * on first, since the requests made for them may have died with the link.
   */
  resume(): void {
    this.listening = true;
    this.faults.start();
    this.guest.faults.reraise();
  }
}

function noPages(): never {
  throw new Error('A postcopy package carries no pages');
}

function roundUp32(n: number): number {
  return Math.ceil(n / 32) * 32;
}
