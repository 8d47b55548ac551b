/**
 * Reads a main migration stream the way a destination does (the same
 * decoder, the same message schemas), but lands nothing: it counts pages
 * per block and kind, lists device states and commands, and unpacks the
 * postcopy package, keeping every section's byte offset.
 *
 * @example
 * const analyzer = new StreamAnalyzer('guest.mig', 0);
 * for await (const chunk of chunks) if (!analyzer.feed(chunk)) break;
 * analyzer.end();
 * console.log(analyzer.report());
 */
import { ChannelKind, HELLO_KIND_OFFSET } from '../../protocols/hello/constants.js';
import type { ChannelHello } from '../../protocols/hello/types.js';
import { DEFAULT_PAGE_SIZE } from '../../protocols/page-runs/constants.js';
import type { GuestLayout, PageSink } from '../../protocols/page-runs/types.js';
import { FRAME_HEADER_SIZE } from '../../protocols/stream/constants.js';
import type { DeviceMessage, HeaderMessage, PackagedMessage, StreamMessage } from '../../protocols/stream/messages.js';
import { AnalyzeError, expectedFor } from './analyze-error.js';
import { CommandLog, type CommandDetail, type CommandEntry } from './command-log.js';
import { FrameWalker, type FrameInfo } from './frame-walker.js';
import { PageCounter } from './page-counter.js';
import { CHANNEL_KIND_NAMES, type DeviceReport, type StreamReport } from './stream-report.js';

/** More devices than a stream header may list (65536): beyond them, states of unknown devices are only counted. */
const MAX_DEVICES = 70_000;

export class StreamAnalyzer {
  private readonly counter = new PageCounter(DEFAULT_PAGE_SIZE);
  private readonly walker: FrameWalker;
  private readonly log = new CommandLog();
  private readonly devices = new Map<string, DeviceReport>();
  private devicesUnlisted = 0;
  private hello: StreamReport['hello'];
  private header: HeaderMessage | undefined;
  private headerOffset = 0;
  private pagesFrames = 0;
  private packageOffset: number | undefined;
  private eofOffset: number | undefined;
  private framesAfterEof = 0;
  private error: AnalyzeError | undefined;
  /** The file's size, when the reader knows it. */
  fileSize: number | undefined;

  constructor(private readonly file: string, private readonly start: number) {
    this.walker = new FrameWalker({
      base: start,
      sink: this.counter,
      expectHello: true,
      onHello: (hello) => this.onHello(hello),
      onMessage: (message, frame) => this.onMessage(message, frame),
      onPagesFrame: () => this.onPagesFrame(),
    });
  }

  /** Reads `chunk` (copied out before this returns); false once the stream is found bad. */
  feed(chunk: Uint8Array): boolean {
    if (this.error) return false;
    try {
      this.walker.feed(chunk);
      return true;
    } catch (error) {
      this.failWith(error);
      return false;
    }
  }

  /** The input ended. */
  end(): void {
    if (this.error) return;
    try {
      this.walker.end();
      if (this.eofOffset === undefined) {
        throw this.walker.errorAtFrame('NO_EOF', `The stream ends after ${this.walker.frameCount} frames without its EOF`, expectedFor('NO_EOF', true));
      }
    } catch (error) {
      this.failWith(error);
    }
  }

  /** The input could not be read on (an I/O error): reported where reading stopped. */
  readFailed(reason: string): void {
    if (this.error) return;
    this.error = new AnalyzeError('READ_FAILED', `Reading the stream failed: ${reason}`, {
      offset: this.walker.offset,
      expected: expectedFor('READ_FAILED', false),
    });
  }

  report(): StreamReport {
    const header = this.header;
    const counts = this.counter.blocks;
    const report: StreamReport = {
      file: this.file,
      start: this.start,
      bytes: this.walker.offset - this.start,
      blocks: (header?.blocks ?? []).map((block, index) => ({
        index,
        name: block.name,
        size: block.size,
        pageCount: pageCount(block.size, header!.pageSize),
        ...(counts[index] ?? { frames: 0, normal: 0, zero: 0, compressed: 0, postcopy: 0 }),
      })),
      devices: [...this.devices.values()],
      devicesUnlisted: this.devicesUnlisted,
      frames: this.walker.frameCount,
      pagesFrames: this.pagesFrames,
      commands: this.log.entries,
      commandsUnlisted: this.log.unlisted,
      commandTotals: Object.fromEntries(this.log.totals),
      framesAfterEof: this.framesAfterEof,
    };
    if (this.fileSize !== undefined) report.fileSize = this.fileSize;
    if (this.hello) report.hello = this.hello;
    if (header) {
      const { type: _type, blocks: _blocks, devices: _devices, ...rest } = header;
      report.header = { ...rest, offset: this.headerOffset };
    }
    if (this.packageOffset !== undefined) report.packageOffset = this.packageOffset;
    if (this.eofOffset !== undefined) report.eofOffset = this.eofOffset;
    if (this.error) report.error = this.error;
    return report;
  }

  private failWith(error: unknown): void {
    if (!(error instanceof AnalyzeError)) throw error;
    this.error = error;
  }

  private onHello(hello: ChannelHello): void {
    this.hello = { ...hello, offset: this.start };
    if (hello.kind !== ChannelKind.MAIN) {
      throw new AnalyzeError(
        'NOT_MAIN_CHANNEL',
        `This is ${CHANNEL_KIND_NAMES[hello.kind]} channel ${hello.channelId} of ${hello.channelCount}, not a main migration stream`,
        { offset: this.start + HELLO_KIND_OFFSET, expected: expectedFor('NOT_MAIN_CHANNEL', false) },
      );
    }
  }

  private onPagesFrame(): void {
    this.pagesFrames++;
    this.counter.frameRead();
    if (this.eofOffset !== undefined) this.framesAfterEof++;
  }

  private onMessage(message: StreamMessage, frame: FrameInfo): void {
    if (this.eofOffset !== undefined) this.framesAfterEof++;
    switch (message.type) {
      case 'header':
        if (this.header) {
          this.log.add('header', frame.offset);
          return;
        }
        return this.onHeader(message, frame);
      case 'device':
        return this.onDevice(message, frame.offset, false);
      case 'packaged':
        this.log.add('packaged', frame.offset, { bytes: message.data.length, inner: this.unpack(message, frame) });
        // What comes after the package is sent while the destination runs the guest.
        this.packageOffset ??= frame.offset;
        this.counter.postcopy = true;
        return;
      case 'eof':
        this.eofOffset ??= frame.offset;
        this.log.add('eof', frame.offset);
        return;
      default:
        this.log.add(commandName(message), frame.offset, this.detail(message));
    }
  }

  private onHeader(header: HeaderMessage, frame: FrameInfo): void {
    if (header.pageSize !== DEFAULT_PAGE_SIZE) {
      throw this.walker.errorAtFrame('BAD_HEADER', `The stream header gives page size ${header.pageSize}; this build reads ${DEFAULT_PAGE_SIZE}`,
        expectedFor('BAD_HEADER', false));
    }
    this.header = header;
    this.headerOffset = frame.offset;
    this.counter.setBlocks(header.blocks.length);
    this.walker.decoder.setLayout(layoutOf(header));
    if (header.capabilities.includes('xbzrle')) this.walker.decoder.setXbzrle(this.counter);
    for (const device of header.devices) {
      this.devices.set(deviceKey(device), { name: device.name, instance: device.instance, headerVersion: device.version, count: 0, packaged: 0 });
    }
  }

  private onDevice(device: DeviceMessage, offset: number, packaged: boolean): void {
    const key = deviceKey(device);
    let report = this.devices.get(key);
    if (!report) {
      if (this.devices.size >= MAX_DEVICES) {
        this.devicesUnlisted++;
        return;
      }
      report = { name: device.name, instance: device.instance, count: 0, packaged: 0 };
      this.devices.set(key, report);
    }
    report.version = device.version;
    report.size = device.state.length;
    report.count++;
    if (packaged) report.packaged++;
    report.offset ??= offset;
  }

  /**
   * The postcopy package is a stream of its own (frames without a hello):
   * read with its own decoder, its offsets those of its bytes in the file.
   */
  private unpack(message: PackagedMessage, frame: FrameInfo): CommandEntry[] {
    const data = message.data;
    // The decoder gives binary fields as views into the frame's body: their place in the file is known.
    const bodyLength = frame.length - FRAME_HEADER_SIZE;
    const base = data.buffer.byteLength === bodyLength ? frame.offset + FRAME_HEADER_SIZE + data.byteOffset : frame.offset;
    const inner = new CommandLog();
    const noPages = (): never => {
      throw walker.errorAtFrame('BAD_PACKAGE', 'A PAGES frame in the postcopy package, which carries no pages', expectedFor('BAD_PACKAGE', false));
    };
    const sink: PageSink = { pageView: noPages, pagesLoaded: noPages, zeroPages: noPages };
    const walker: FrameWalker = new FrameWalker({
      base,
      sink,
      expectHello: false,
      context: 'In the postcopy package: ',
      onMessage: (m, f) => {
        if (m.type === 'device') this.onDevice(m, f.offset, true);
        inner.add(commandName(m), f.offset, this.detail(m));
      },
    });
    if (this.header) walker.decoder.setLayout(layoutOf(this.header));
    walker.feed(data);
    walker.end();
    return inner.entries;
  }

  private detail(message: StreamMessage): CommandDetail {
    switch (message.type) {
      case 'ping':
        return { value: message.value };
      case 'round-end':
        return { value: message.round };
      case 'colo':
        return { value: message.value };
      case 'colo-output':
        return { bytes: message.packets.length };
      case 'postcopy-advise':
        return { hostPageSize: message.hostPageSize, targetPageSize: message.targetPageSize };
      case 'postcopy-discard':
        return { block: this.header?.blocks[message.block]?.name ?? `#${message.block}`, pages: bitsSet(message.bitmap) };
      case 'recv-bitmap':
        return { block: message.block };
      default:
        return {};
    }
  }
}

/** How the command list names a message: its type, and a COLO message's step. */
function commandName(message: StreamMessage): string {
  return message.type === 'colo' ? `colo ${message.message}` : message.type;
}

function pageCount(size: number, pageSize: number): number {
  return Math.ceil(size / pageSize);
}

function layoutOf(header: HeaderMessage): GuestLayout {
  return { blocks: header.blocks.map((b) => ({ pageCount: pageCount(b.size, header.pageSize) })) };
}

function deviceKey(device: { name: string; instance: number }): string {
  return `${device.instance}:${device.name}`;
}

function bitsSet(bitmap: Uint8Array): number {
  let n = 0;
  for (let byte of bitmap) {
    for (; byte !== 0; byte &= byte - 1) n++;
  }
  return n;
}
