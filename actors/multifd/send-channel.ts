/**
 * One source multifd channel, run as a long-lived Piscina task (a thread
 * may run several: channel-threads.ts): it owns one connection for the
 * whole migration, takes page ranges from the migration thread, reads those
 * pages straight from guest memory, detects zero pages, compresses, frames
 * and writes, with the socket's backpressure.
 *
 * Hot path: per page a bit test and (for written pages) a zero check
 * (ZeroPageCheck), and when compressing a look at whether the page would
 * shrink (IncompressiblePageCheck); page bytes are written as views of
 * guest memory, never copied, unless compressed.
 */
import { on, once } from 'node:events';
import { threadId } from 'node:worker_threads';
import { RamBlock } from '../guest/ram-block.js';
import { osThreadId } from '../threads/os-thread-id.js';
import { IncompressiblePageCheck } from '../ram/incompressible-page.js';
import { RunBuilder, ZeroPageCheck } from '../ram/page-runs.js';
import { compressPages } from '../../protocols/multifd/compression.js';
import { encodePacketHeader, encodeSyncPacket } from '../../protocols/multifd/encode.js';
import { ChannelKind } from '../../protocols/hello/constants.js';
import { encodeHello } from '../../protocols/hello/encode.js';
import { CONNECT_TIMEOUT_MS, connectChannel } from '../../protocols/transport/outgoing.js';
import {
  CHANNEL_STATS, STAT_BYTES, STAT_COMPRESSED_BYTES, STAT_COMPRESSED_PAGES, STAT_NORMAL_PAGES, STAT_PACKETS, STAT_RAW_PAGES, STAT_ZERO_PAGES,
  type FromSendChannel, type SendChannelTask, type ToSendChannel,
} from './messages.js';

/** One packet's pages, and whether its data goes through the channel's compressor. */
interface Frame {
  runs: RunBuilder;
  compress: boolean;
}

/**
 * The packets of one batch of page ranges, as runs of zero and data pages.
 * With `incompressible` (a compressing channel), pages that would not
 * shrink gather in packets of their own, sent raw; a zero page joins the
 * packet of the data page before it, so runs stay long.
 *
 * The per-page loop lives in this small function of its own: inside the
 * async channel loop it made V8 optimise that whole loop, twice per channel
 * and 25–40 ms each time (--trace-opt), during every migration.
 */
function framesOf(ram: RamBlock, zeroCheck: ZeroPageCheck, incompressible: IncompressiblePageCheck | undefined, ranges: Uint32Array): Frame[] {
  const frames: Frame[] = [];
  // [0]: pages for the compressor (all pages when not compressing), [1]: pages sent raw.
  const open = [new RunBuilder(ram), new RunBuilder(ram)];
  let raw = 0;
  for (let i = 0; i < ranges.length; i += 2) {
    for (let page = ranges[i]!, end = page + ranges[i + 1]!; page < end; page++) {
      const zero = zeroCheck.isZero(page);
      if (!zero && incompressible !== undefined) raw = incompressible.inRun(page) ? 1 : 0;
      if (!open[raw]!.add(page, zero)) {
        frames.push({ runs: open[raw]!, compress: raw === 0 });
        open[raw] = new RunBuilder(ram);
        open[raw]!.add(page, zero);
      }
    }
  }
  for (const [kind, runs] of open.entries()) if (!runs.empty) frames.push({ runs, compress: kind === 0 });
  return frames;
}

/** Loads this module in a pool's worker ahead of any migration (see MultifdSendPool). */
export async function warm(): Promise<void> {}

export async function sendChannel(task: SendChannelTask): Promise<{ index: number; packets: number }> {
  const { index, control } = task;
  const name = `multifd channel ${index}`;
  const stats = new Float64Array(task.stats, index * CHANNEL_STATS * 8, CHANNEL_STATS);
  const blocks = task.blocks.map((b) => new RamBlock(b));
  const zeroChecks = blocks.map((b) => new ZeroPageCheck(b));
  const incompressible = task.compression === 'none' ? [] : blocks.map((b) => new IncompressiblePageCheck(b));
  const post = (m: FromSendChannel) => control.postMessage(m);

  const a = task.address;
  const socket = await connectChannel('path' in a ? { scheme: 'unix', path: a.path } : { scheme: 'tcp', host: a.host, port: a.port }, CONNECT_TIMEOUT_MS, task.tls)
    .catch((err: Error) => {
      throw new Error(`${name}: ${err.message}`);
    });
  // The socket dying ends the message loop with an error naming the channel.
  const broken = new AbortController();
  socket.on('error', (err) => broken.abort(new Error(`${name}: ${err.message}`)));
  socket.on('close', () => broken.abort(new Error(`${name}: the connection was closed`)));
  let packetNumber = 0;
  // A wait cut short by a broken socket ends with why it broke, not a bare AbortError.
  const whyBroken = (err: unknown): never => {
    throw broken.signal.aborted ? broken.signal.reason : err;
  };
  /** Writes a packet's parts with one system call (writev), then waits while the socket is full. */
  const write = async (...parts: Uint8Array[]): Promise<void> => {
    socket.cork();
    for (const bytes of parts) {
      stats[STAT_BYTES]! += bytes.length;
      socket.write(bytes);
    }
    socket.uncork();
    if (socket.writableNeedDrain) await once(socket, 'drain', { signal: broken.signal }).catch(whyBroken);
  };

  await write(encodeHello({ kind: ChannelKind.MULTIFD, channelId: index, channelCount: task.count, ...(task.uuid ? { uuid: task.uuid } : {}) }));
  post({ type: 'connected', tid: osThreadId(), threadId });

  try {
    for await (const [message] of on(control, 'message', { signal: broken.signal })) {
      const m = message as ToSendChannel;
      if (m.type === 'end') break;
      if (m.type === 'sync') {
        await write(encodeSyncPacket(packetNumber++, m.round, task.compression));
        stats[STAT_PACKETS]!++;
        post({ type: 'synced', round: m.round });
        continue;
      }
      for (const { runs: frame, compress } of framesOf(blocks[m.block]!, zeroChecks[m.block]!, incompressible[m.block], m.ranges)) {
        const views = frame.dataViews();
        // Only page data is compressed: a packet of zero runs carries no data at all, and raw pages say so in their header.
        const compression = task.compression !== 'none' && compress && views.length > 0 ? task.compression : 'none';
        const data = compression === 'none' ? views : [compressPages(compression, task.level, views)];
        const dataLength = data.reduce((n, v) => n + v.length, 0);
        const header = encodePacketHeader({
          sync: false, compression, packetNumber: packetNumber++, round: m.round,
          block: m.block, runs: frame.runs, dataLength,
        });
        await write(header, ...data);
        stats[STAT_PACKETS]!++;
        stats[STAT_NORMAL_PAGES]! += frame.dataPages;
        stats[STAT_ZERO_PAGES]! += frame.zeroPages;
        if (compression !== 'none') {
          stats[STAT_COMPRESSED_PAGES]! += frame.dataPages;
          stats[STAT_COMPRESSED_BYTES]! += dataLength;
        } else if (task.compression !== 'none') stats[STAT_RAW_PAGES]! += frame.dataPages;
      }
      post({ type: 'sent' });
    }
  } catch (err) {
    whyBroken(err);
  } finally {
    socket.removeAllListeners('close');
  }
  socket.end();
  await once(socket, 'finish', { signal: broken.signal }).catch(() => {});
  socket.destroy();
  control.close();
  return { index, packets: packetNumber };
}
