/**
 * One source multifd channel, run as a long-lived Piscina task: it owns one
 * connection for the whole migration, takes page ranges from the migration
 * thread, reads those pages straight from guest memory, detects zero pages,
 * compresses, frames and writes, with the socket's backpressure.
 *
 * Hot path: per page a bit test and (for written pages) a zero check
 * (ZeroPageCheck); page bytes are written as views of guest memory, never
 * copied, unless compressed.
 */
import { on, once } from 'node:events';
import { readlinkSync } from 'node:fs';
import { RamBlock } from '../guest/ram-block.js';
import { RunBuilder, ZeroPageCheck } from '../ram/page-runs.js';
import { compressPages, ready } from '../../protocols/multifd/compression.js';
import { encodePacketHeader, encodeSyncPacket } from '../../protocols/multifd/encode.js';
import { ChannelKind } from '../../protocols/hello/constants.js';
import { encodeHello } from '../../protocols/hello/encode.js';
import { CONNECT_TIMEOUT_MS, connectChannel } from '../../protocols/transport/outgoing.js';
import {
  CHANNEL_STATS, STAT_BYTES, STAT_NORMAL_PAGES, STAT_PACKETS, STAT_ZERO_PAGES,
  type FromSendChannel, type SendChannelTask, type ToSendChannel,
} from './messages.js';

/**
 * The packets of one batch of page ranges, as runs of zero and data pages.
 * The per-page loop lives in this small function of its own: inside the
 * async channel loop it made V8 optimise that whole loop, twice per channel
 * and 25–40 ms each time (--trace-opt), during every migration.
 */
function framesOf(ram: RamBlock, zeroCheck: ZeroPageCheck, ranges: Uint32Array): RunBuilder[] {
  const frames: RunBuilder[] = [];
  let frame = new RunBuilder(ram);
  for (let i = 0; i < ranges.length; i += 2) {
    for (let page = ranges[i]!, end = page + ranges[i + 1]!; page < end; page++) {
      const zero = zeroCheck.isZero(page);
      if (!frame.add(page, zero)) {
        frames.push(frame);
        frame = new RunBuilder(ram);
        frame.add(page, zero);
      }
    }
  }
  if (!frame.empty) frames.push(frame);
  return frames;
}

/** This thread's id as the kernel knows it (/proc/thread-self names it), as QEMU's qemu_get_thread_id gives. */
function osThreadId(): number {
  return Number(/\/task\/(\d+)$/.exec(readlinkSync('/proc/thread-self'))?.[1] ?? 0);
}

/** Loads this module in a pool's worker ahead of any migration (see MultifdSendPool). */
export async function warm(): Promise<void> {}

export async function sendChannel(task: SendChannelTask): Promise<{ index: number; packets: number }> {
  const { index, control } = task;
  const name = `multifd channel ${index}`;
  const stats = new Float64Array(task.stats, index * CHANNEL_STATS * 8, CHANNEL_STATS);
  const blocks = task.blocks.map((b) => new RamBlock(b));
  const zeroChecks = blocks.map((b) => new ZeroPageCheck(b));
  if (task.compression === 'zstd') await ready();
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
  post({ type: 'connected', tid: osThreadId() });

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
      for (const frame of framesOf(blocks[m.block]!, zeroChecks[m.block]!, m.ranges)) {
        const views = frame.dataViews();
        // Only page data is compressed: a packet of zero runs carries no data at all.
        const data = task.compression === 'none' || views.length === 0 ? views : [compressPages(task.compression, task.level, views)];
        const dataLength = data.reduce((n, v) => n + v.length, 0);
        const header = encodePacketHeader({
          sync: false, compression: task.compression, packetNumber: packetNumber++, round: m.round,
          block: m.block, runs: frame.runs, dataLength,
        });
        await write(header, ...data);
        stats[STAT_PACKETS]!++;
        stats[STAT_NORMAL_PAGES]! += frame.dataPages;
        stats[STAT_ZERO_PAGES]! += frame.zeroPages;
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
