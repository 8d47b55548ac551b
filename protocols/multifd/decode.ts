/**
 * Incremental decoder of one multifd channel (decode only).
 *
 * A pull decoder like the main stream's (protocols/pull-decoder): `want()`
 * says where the next bytes must go, `commit(n)` says n bytes arrived there.
 * Headers and descriptors go to small scratch buffers; uncompressed page bytes
 * go straight into the guest-memory views the sink returns
 * (protocols/page-runs/decode.ts), so with `net.Socket`'s `onread` the kernel
 * copies pages directly into guest RAM (short runs are read ahead together
 * and copied in: protocols/pull-decoder). Compressed data is read into a
 * bounded buffer of the decoder's own, decompressed into a scratch buffer
 * reused across packets, and copied into the sink's views run by run.
 *
 * Hot path: want/commit run once per socket read. They must never allocate
 * per page or per packet (the compression buffers grow at most to the packet
 * limits, once), nor request a view before every run of the packet is checked
 * against the guest layout. Every length is checked against its limit as soon
 * as its header arrives, before any data is buffered.
 *
 * Round boundary (DESIGN rule 2): `onSync(round)` fires once every page of the
 * SYNC packet is in place, before any byte of the next packet is asked for. A
 * caller reading through want/commit pauses the channel there until every
 * channel has synced that round; `push()` cannot stop mid-chunk.
 */
import { ChannelKind, HELLO_SIZE } from '../hello/constants.js';
import { decodeHello } from '../hello/decode.js';
import { HelloError } from '../hello/errors.js';
import type { ChannelHello } from '../hello/types.js';
import { DEFAULT_PAGE_SIZE, RUN_DESCRIPTOR_SIZE } from '../page-runs/constants.js';
import { PageRunDecoder } from '../page-runs/decode.js';
import type { GuestLayout, PageSink } from '../page-runs/types.js';
import { checkAvailable, decompressInto, type Compressor } from './compression.js';
import {
  compressionCode,
  COMPRESSION_SLACK,
  type CompressionMethod,
  FLAG_COMPRESSION_MASK,
  FLAG_COMPRESSION_SHIFT,
  FLAG_SYNC,
  FLAGS_KNOWN,
  MAX_DATA_LENGTH,
  MAX_PAGE_DATA_PER_PACKET,
  MAX_PAGES_PER_PACKET,
  MAX_RUNS_PER_PACKET,
  MULTIFD_MAGIC,
  MULTIFD_VERSION,
  PACKET_BLOCK_OFFSET,
  PACKET_DATA_LENGTH_OFFSET,
  PACKET_FLAGS_OFFSET,
  PACKET_HEADER_SIZE,
  PACKET_MAGIC_OFFSET,
  PACKET_NUMBER_OFFSET,
  PACKET_ROUND_OFFSET,
  PACKET_RUN_COUNT_OFFSET,
  PACKET_VERSION_OFFSET,
} from './constants.js';
import { MultifdError } from './errors.js';
import type { PacketInfo } from './types.js';

export interface MultifdDecoderOptions {
  /** Where page runs land. */
  sink: PageSink;
  /** This side's `multifd-compression`; a packet compressed otherwise is refused (raw packets are taken on any channel). */
  compression: CompressionMethod;
  /** A SYNC packet ended `round` on this channel; all its pages are in place. */
  onSync(round: number): void;
  /** Each packet once its pages are in place (before onSync for a SYNC packet). */
  onPacket?(info: PacketInfo): void;
  /** The guest's RAM blocks; or later through setLayout(). */
  layout?: GuestLayout;
  /** Target page size; default 4096. */
  pageSize?: number;
  /** The channel's id, named in errors; taken from the hello when the decoder reads it. */
  channelId?: number;
  /**
   * When given, the decoder first reads and checks the 32-byte channel hello
   * (kind MULTIFD) and hands it here. Leave it out when the caller has read
   * the hello itself, e.g. to sort connections.
   */
  onHello?(hello: ChannelHello): void;
}

const Phase = {
  HELLO: 0,
  HEADER: 1,
  DESCRIPTORS: 2,
  PAGE_DATA: 3,
  COMPRESSED_DATA: 4,
} as const;
type Phase = (typeof Phase)[keyof typeof Phase];

const KIND_NAMES: Record<number, string> = { [ChannelKind.MAIN]: 'main', [ChannelKind.POSTCOPY_PREEMPT]: 'postcopy-preempt' };

/**
 * Decodes one multifd channel: optionally its hello, then packets. Its
 * `bytesDecoded` is the channel's share of `multifd-bytes`.
 *
 * @example
 * const decoder = new MultifdDecoder({ sink: guestRam, layout, compression: 'none', onSync: (round) => barrier.arrive(id, round) });
 * const socket = net.connect({ port, onread: { buffer: () => decoder.want(), callback: (n) => { decoder.commit(n); return true; } } });
 * socket.on('end', () => decoder.end());
 */
export class MultifdDecoder extends PageRunDecoder {
  private readonly compression: CompressionMethod;
  private readonly expectedCompressionFlags: number;
  private readonly onSync: (round: number) => void;
  private readonly onPacket: ((info: PacketInfo) => void) | undefined;
  private readonly onHello: ((hello: ChannelHello) => void) | undefined;
  private channelId: number | undefined;

  // The hello and the packet header share one scratch buffer.
  private readonly scratch = new Uint8Array(HELLO_SIZE);
  private readonly scratchView = new DataView(this.scratch.buffer);
  private readonly header = this.scratch.subarray(0, PACKET_HEADER_SIZE);
  /** Compressed data as it arrives, and the pages it inflates to; grown on demand, never past the packet limits. */
  private compressed = new Uint8Array(0);
  private decompressed = new Uint8Array(0);

  private phase: Phase;

  private nextPacketNumber = 0;
  /** The round this channel is in: set by its first packet, advanced by each SYNC. */
  private round: number | undefined;

  private packetNumber = 0;
  private packetRound = 0;
  private sync = false;
  /** This packet's data went through the compressor; false for raw pages on a compressing channel. */
  private packetCompressed = false;
  private dataLength = 0;
  private packetBytes = 0;
  private packets = 0;

  constructor(options: MultifdDecoderOptions) {
    const code = compressionCode(options.compression);
    checkAvailable(options.compression);
    const pageSize = options.pageSize ?? DEFAULT_PAGE_SIZE;
    if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > MAX_PAGE_DATA_PER_PACKET) {
      throw new RangeError(`Bad page size ${pageSize}`);
    }
    super({ sink: options.sink, pageSize, maxRuns: MAX_RUNS_PER_PACKET, layout: options.layout });
    this.compression = options.compression;
    this.expectedCompressionFlags = code << FLAG_COMPRESSION_SHIFT;
    this.onSync = options.onSync;
    this.onPacket = options.onPacket;
    this.onHello = options.onHello;
    this.channelId = options.channelId;
    if (this.onHello !== undefined) {
      this.phase = Phase.HELLO;
      this.expect(this.scratch, HELLO_SIZE);
    } else {
      this.phase = Phase.HEADER;
      this.expect(this.header, PACKET_HEADER_SIZE);
    }
  }

  get packetsDecoded(): number {
    return this.packets;
  }

  protected override committed(n: number): void {
    if (this.phase !== Phase.HELLO) this.packetBytes += n;
  }

  /** Between packets. */
  protected override atBoundary(): boolean {
    return this.phase === Phase.HEADER && this.filled === 0;
  }

  protected override truncated(): Error {
    return new MultifdError('TRUNCATED', `${this.prefix()}: channel ended ${this.describePosition()}`);
  }

  protected override closed(): Error {
    return new MultifdError('DECODER_CLOSED', `${this.prefix()}: channel already ended`);
  }

  protected override emptyRun(run: number): Error {
    return new MultifdError('BAD_RUN', `${this.prefix()}: run ${run} of packet ${this.packetNumber} has no pages`);
  }

  protected override outsideBlock(first: number, count: number, block: number, pageCount: number): Error {
    return new MultifdError('BAD_RUN', `multifd: pages ${first}-${first + count - 1} of ram block ${block} are outside the block (it has ${pageCount} pages)`);
  }

  protected override runsLanded(): void {
    this.packetComplete();
  }

  private describePosition(): string {
    switch (this.phase) {
      case Phase.HELLO:
        return `in its channel hello (${this.filled} of ${HELLO_SIZE} bytes)`;
      case Phase.HEADER:
        return `in the header of packet ${this.nextPacketNumber} (${this.filled} of ${PACKET_HEADER_SIZE} bytes)`;
      default: {
        const size = PACKET_HEADER_SIZE + RUN_DESCRIPTOR_SIZE * this.runCount + this.dataLength;
        return `in packet ${this.packetNumber} (${this.packetBytes} of ${size} bytes)`;
      }
    }
  }

  private prefix(): string {
    return this.channelId === undefined ? 'multifd' : `multifd ${this.channelId}`;
  }

  protected override fieldComplete(field: Uint8Array): void {
    switch (this.phase) {
      case Phase.HELLO:
        this.helloComplete();
        return;
      case Phase.HEADER:
        this.headerComplete();
        return;
      case Phase.DESCRIPTORS:
        this.descriptorsComplete();
        return;
      case Phase.PAGE_DATA:
        this.pageViewFilled(field);
        return;
      case Phase.COMPRESSED_DATA:
        this.compressedDataComplete();
        return;
    }
  }

  private helloComplete(): void {
    let hello: ChannelHello;
    try {
      hello = decodeHello(this.scratch);
    } catch (error) {
      if (error instanceof HelloError) throw new MultifdError('BAD_HELLO', `multifd: bad channel hello: ${error.message}`);
      throw error;
    }
    if (hello.kind !== ChannelKind.MULTIFD) {
      throw new MultifdError('BAD_HELLO', `multifd: channel hello is for a ${KIND_NAMES[hello.kind] ?? 'unknown'} channel`);
    }
    this.channelId = hello.channelId;
    this.startPacket();
    this.onHello?.(hello);
  }

  private startPacket(): void {
    this.phase = Phase.HEADER;
    this.packetBytes = 0;
    this.expect(this.header, PACKET_HEADER_SIZE);
  }

  private headerComplete(): void {
    const view = this.scratchView;
    const magic = view.getUint32(PACKET_MAGIC_OFFSET);
    if (magic !== MULTIFD_MAGIC) {
      throw new MultifdError('BAD_MAGIC', `multifd: received packet magic ${magic.toString(16)} and expected magic ${MULTIFD_MAGIC.toString(16)}`);
    }
    const version = view.getUint16(PACKET_VERSION_OFFSET);
    if (version !== MULTIFD_VERSION) {
      throw new MultifdError('BAD_VERSION', `multifd: received packet version ${version} and expected version ${MULTIFD_VERSION}`);
    }
    const flags = view.getUint16(PACKET_FLAGS_OFFSET);
    if ((flags & ~FLAGS_KNOWN) !== 0) {
      throw new MultifdError('BAD_FLAGS', `${this.prefix()}: received packet with unknown flags 0x${(flags & ~FLAGS_KNOWN).toString(16)}`);
    }
    // A compressing sender flags the packets it sends raw (pages that would not shrink) as `none`.
    const packetCompression = flags & FLAG_COMPRESSION_MASK;
    if (packetCompression !== this.expectedCompressionFlags && packetCompression !== 0) {
      throw new MultifdError(
        'COMPRESSION_MISMATCH',
        `${this.prefix()}: flags received ${(flags & FLAG_COMPRESSION_MASK).toString(16)} flags expected ${this.expectedCompressionFlags.toString(16)}`,
      );
    }
    const packetNumber = view.getUint32(PACKET_NUMBER_OFFSET);
    if (packetNumber !== this.nextPacketNumber) {
      throw new MultifdError('OUT_OF_SEQUENCE', `${this.prefix()}: received packet number ${packetNumber} and expected ${this.nextPacketNumber}`);
    }
    const round = view.getUint32(PACKET_ROUND_OFFSET);
    if (this.round !== undefined && round !== this.round) {
      throw new MultifdError('BAD_ROUND', `${this.prefix()}: packet ${packetNumber} belongs to round ${round}, but the channel is in round ${this.round}`);
    }
    const block = view.getUint16(PACKET_BLOCK_OFFSET);
    const runs = view.getUint16(PACKET_RUN_COUNT_OFFSET);
    const dataLength = view.getUint32(PACKET_DATA_LENGTH_OFFSET);
    const sync = (flags & FLAG_SYNC) !== 0;
    if (runs > MAX_RUNS_PER_PACKET) {
      throw new MultifdError('TOO_LARGE', `multifd: received packet with ${runs} runs and expected maximum runs are ${MAX_RUNS_PER_PACKET}`);
    }
    const compressed = packetCompression !== 0;
    const maxData = compressed ? MAX_DATA_LENGTH : MAX_PAGE_DATA_PER_PACKET;
    if (dataLength > maxData) {
      throw new MultifdError('TOO_LARGE', `multifd: received packet with ${dataLength} data bytes and expected maximum is ${maxData}`);
    }
    this.nextPacketNumber = packetNumber + 1;
    this.round = round;
    this.packetNumber = packetNumber;
    this.packetRound = round;
    this.sync = sync;
    this.packetCompressed = compressed;
    this.beginBatch(block, runs);
    this.dataLength = dataLength;
    if (runs === 0) {
      if (!sync) throw new MultifdError('BAD_RUN', `${this.prefix()}: packet ${packetNumber} has no pages and is not a SYNC packet`);
      if (block !== 0) throw new MultifdError('BAD_BLOCK', `${this.prefix()}: packet ${packetNumber} has no pages but names block ${block}`);
      if (dataLength !== 0) {
        throw new MultifdError('BAD_LENGTH', `${this.prefix()}: packet ${packetNumber} has no pages but ${dataLength} data bytes`);
      }
      this.packetComplete();
      return;
    }
    const blocks = this.layout?.blocks;
    if (blocks === undefined) throw new MultifdError('BAD_BLOCK', `${this.prefix()}: received pages before the guest's RAM blocks are known`);
    if (block >= blocks.length) throw new MultifdError('BAD_BLOCK', `multifd: unknown ram block ${block} (the guest has ${blocks.length})`);
    this.phase = Phase.DESCRIPTORS;
    this.expect(this.descriptors, RUN_DESCRIPTOR_SIZE * runs);
  }

  /** Checks every run of the packet, and its data length, before any of its bytes is accepted. */
  private descriptorsComplete(): void {
    this.checkRuns();
    const { batchPages: pages, batchDataPages: dataPages } = this;
    if (pages > MAX_PAGES_PER_PACKET) {
      throw new MultifdError('TOO_LARGE', `multifd: received packet with ${pages} pages and expected maximum pages are ${MAX_PAGES_PER_PACKET}`);
    }
    const raw = dataPages * this.pageSize;
    if (raw > MAX_PAGE_DATA_PER_PACKET) {
      throw new MultifdError('TOO_LARGE', `multifd: received packet with ${raw} bytes of pages and expected maximum is ${MAX_PAGE_DATA_PER_PACKET}`);
    }
    const length = this.dataLength;
    if (!this.packetCompressed || raw === 0) {
      if (length !== raw) {
        throw new MultifdError(
          'BAD_LENGTH',
          `${this.prefix()}: packet ${this.packetNumber} has ${length} data bytes, but its runs need ${raw} (${dataPages} pages)`,
        );
      }
    } else if (length > raw + COMPRESSION_SLACK) {
      throw new MultifdError(
        'TOO_LARGE',
        `${this.prefix()}: packet ${this.packetNumber} has ${length} bytes of ${this.compression} data for ${raw} bytes of pages (at most ${raw + COMPRESSION_SLACK})`,
      );
    } else if (length === 0) {
      throw new MultifdError('BAD_LENGTH', `${this.prefix()}: packet ${this.packetNumber} has no data for its ${dataPages} pages`);
    }
    if (!this.packetCompressed || raw === 0) {
      this.phase = Phase.PAGE_DATA;
      this.landRuns();
      return;
    }
    if (this.compressed.length < length) this.compressed = new Uint8Array(grow(this.compressed.length, length, MAX_DATA_LENGTH));
    this.phase = Phase.COMPRESSED_DATA;
    this.expect(this.compressed, length);
  }

  /** Compressed: inflates the whole packet, then places its runs in order. */
  private compressedDataComplete(): void {
    const raw = this.batchDataPages * this.pageSize;
    if (this.decompressed.length < raw) this.decompressed = new Uint8Array(grow(this.decompressed.length, raw, MAX_PAGE_DATA_PER_PACKET));
    const pages = this.decompressed.subarray(0, raw);
    try {
      decompressInto(this.compression as Compressor, this.compressed.subarray(0, this.dataLength), pages);
    } catch (error) {
      if (error instanceof MultifdError) throw new MultifdError(error.code, `${this.prefix()}: packet ${this.packetNumber}: ${error.message}`);
      throw error;
    }
    this.placeRuns(pages);
  }

  private packetComplete(): void {
    this.packets++;
    const sync = this.sync;
    const round = this.packetRound;
    if (sync) this.round = round + 1;
    const info: PacketInfo | undefined =
      this.onPacket === undefined
        ? undefined
        : {
            packetNumber: this.packetNumber,
            round,
            sync,
            block: this.block,
            runs: this.runCount,
            pages: this.batchDataPages,
            zeroPages: this.batchPages - this.batchDataPages,
            wireBytes: this.packetBytes,
          };
    this.startPacket();
    if (info !== undefined) this.onPacket?.(info);
    if (sync) this.onSync(round);
  }
}

/** A buffer size of at least `needed`: doubling from `current` so a channel reallocates a few times at most. */
function grow(current: number, needed: number, max: number): number {
  return Math.min(max, Math.max(needed, current * 2, 64 * 1024));
}
