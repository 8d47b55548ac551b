/**
 * A worker thread holding one loopback connection, so N connections use N
 * threads on each side (a destination worker cannot take over a socket its
 * main thread accepted, so each receiving worker runs its own listener).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { osThreadId } from '../../actors/threads/os-thread-id.js';
import { listenChannel, sendChannel, type Slice } from './loopback-channel.js';
import type { ChannelWorkerData, ChannelWorkerMessage } from './loopback-messages.js';

const data = workerData as ChannelWorkerData;
const port = parentPort!;
const post = (message: ChannelWorkerMessage) => port.postMessage(message);
const slice: Slice = data.slice;

try {
  if (data.role === 'receive') {
    const channel = await listenChannel(slice);
    post({ kind: 'port', port: channel.port, tid: osThreadId() });
    await channel.received;
    post({ kind: 'done' });
  } else {
    port.once('message', (to: number) => {
      sendChannel(slice, to).then(
        () => post({ kind: 'done' }),
        (err: Error) => post({ kind: 'error', message: err.message }),
      );
    });
    post({ kind: 'ready', tid: osThreadId() });
  }
} catch (err) {
  post({ kind: 'error', message: (err as Error).message });
}
