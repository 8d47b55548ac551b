import type { Worker } from 'node:worker_threads';
import { startTsWorker } from '../threads/ts-worker.js';
import { channelThreads } from './channel-threads.js';

const ENTRY = new URL('./recv-channel-worker.ts', import.meta.url);

/**
 * The destination's multifd channel threads, started as soon as a
 * destination has multifd on, so their start-up is not part of the incoming
 * migration's setup time (as MultifdSendPool does for the source): as many
 * as channelThreads() gives for the channel count. Each thread waits for
 * its channels' `start` messages; a destination migrates once, so the
 * threads are taken, not returned.
 */
export class MultifdRecvPool {
  private idle: Worker[] = [];

  /** Starts threads until those for `channels` channels are waiting; any beyond are ended. */
  warm(channels: number): void {
    const threads = channelThreads(channels);
    while (this.idle.length > threads) void this.idle.pop()!.terminate();
    while (this.idle.length < threads) {
      const worker = startTsWorker(ENTRY, { name: 'multifd-recv' });
      // A thread that dies while waiting is simply not handed out.
      const drop = () => (this.idle = this.idle.filter((w) => w !== worker));
      worker.once('error', drop);
      worker.once('exit', drop);
      this.idle.push(worker);
    }
  }

  /** The waiting threads for `channels` channels (started now if the pool holds fewer); the caller owns them. */
  take(channels: number): Worker[] {
    this.warm(channels);
    const taken = this.idle;
    this.idle = [];
    for (const w of taken) w.removeAllListeners();
    return taken;
  }

  destroy(): Promise<unknown> {
    const ending = this.idle.map((w) => w.terminate());
    this.idle = [];
    return Promise.all(ending);
  }
}
