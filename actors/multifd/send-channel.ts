/**
 * One source multifd channel, run as a long-lived Piscina task: it owns one
 * connection for the whole migration, takes page ranges from the migration
 * thread, reads those pages straight from guest memory, detects zero pages,
 * compresses, frames and writes, with the socket's backpressure.
 *
 * Hot path: per page a bit test and (for written pages) a native zero
 * comparison; page bytes are written as views of guest memory, never
 * copied, unless compressed.
 */
import { on, once } from 'node:events';
import net from 'node:net';
import { RamBlock } from '../guest/ram-block.js';
import { RunBuilder, isZeroPage, slabBuffers } from '../migration/page-runs.js';
import { compressPages, ready } from '../../protocols/multifd/compression.js';
import { encodePacketHeader, encodeSyncPacket } from '../../protocols/multifd/encode.js';
import { ChannelKind } from '../../protocols/stream/constants.js';
import { encodeHello } from '../../protocols/stream/encode.js';
import {
  CHANNEL_STATS, STAT_BYTES, STAT_NORMAL_PAGES, STAT_PACKETS, STAT_ZERO_PAGES,
  type FromSendChannel, type SendChannelTask, type ToSendChannel,
} from './messages.js';

/** Loads this module in a pool's worker ahead of any migration (see MultifdSendPool). */
export async function warm(): Promise<void> {}

export async function sendChannel(task: SendChannelTask): Promise<{ index: number; packets: number }> {
  const { index, control } = task;
  const name = `multifd channel ${index}`;
  const stats = new Float64Array(task.stats, index * CHANNEL_STATS * 8, CHANNEL_STATS);
  const blocks = task.blocks.map((b) => new RamBlock(b));
  const slabs = blocks.map(slabBuffers);
  if (task.compression !== 'none') await ready();
  const post = (m: FromSendChannel) => control.postMessage(m);

  const socket = await connect(task, name);
  // The socket dying ends the message loop with an error naming the channel.
  const broken = new AbortController();
  socket.on('error', (err) => broken.abort(new Error(`${name}: ${err.message}`)));
  socket.on('close', () => broken.abort(new Error(`${name}: the connection was closed`)));
  let packetNumber = 0;
  // A wait cut short by a broken socket ends with why it broke, not a bare AbortError.
  const whyBroken = (err: unknown): never => {
    throw broken.signal.aborted ? broken.signal.reason : err;
  };
  const write = async (bytes: Uint8Array): Promise<void> => {
    stats[STAT_BYTES]! += bytes.length;
    if (!socket.write(bytes)) await once(socket, 'drain', { signal: broken.signal }).catch(whyBroken);
  };

  await write(encodeHello({ kind: ChannelKind.MULTIFD, channelId: index, channelCount: task.count, ...(task.uuid ? { uuid: task.uuid } : {}) }));
  post({ type: 'connected' });

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
      const ram = blocks[m.block]!;
      const flush = async (frame: RunBuilder) => {
        if (frame.empty) return;
        const views = frame.dataViews();
        // Only page data is compressed: a packet of zero runs carries no data at all.
        const data = task.compression === 'none' || views.length === 0 ? views : [compressPages(task.compression, task.level, views)];
        const dataLength = data.reduce((n, v) => n + v.length, 0);
        await write(encodePacketHeader({
          sync: false, compression: task.compression, packetNumber: packetNumber++, round: m.round,
          block: m.block, runs: frame.runs, dataLength,
        }));
        for (const view of data) await write(view);
        stats[STAT_PACKETS]!++;
        stats[STAT_NORMAL_PAGES]! += frame.dataPages;
        stats[STAT_ZERO_PAGES]! += frame.zeroPages;
      };
      let frame = new RunBuilder(ram);
      for (let i = 0; i < m.ranges.length; i += 2) {
        for (let page = m.ranges[i]!, end = page + m.ranges[i + 1]!; page < end; page++) {
          const zero = isZeroPage(ram, slabs[m.block]!, page);
          if (!frame.add(page, zero)) {
            await flush(frame);
            frame = new RunBuilder(ram);
            frame.add(page, zero);
          }
        }
      }
      await flush(frame);
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

function connect(task: SendChannelTask, name: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const a = task.address;
    const socket = 'path' in a ? net.connect({ path: a.path }) : net.connect({ host: a.host, port: a.port });
    socket.once('connect', () => {
      socket.setNoDelay(true);
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (err) => reject(new Error(`${name}: failed to connect: ${err.message}`)));
  });
}
