import type { Worker } from 'node:worker_threads';
import { startTsWorker } from '../threads/ts-worker.js';

const ENTRY = new URL('./recv-channel-worker.ts', import.meta.url);

/**
 * The destination's multifd channel threads, started as soon as a
 * destination has multifd on, so their start-up is not part of the incoming
 * migration's setup time (as MultifdSendPool does for the source). Each
 * thread waits for its channel's `start` message; a destination migrates
 * once, so the threads are taken, not returned.
 */
export class MultifdRecvPool {
  private idle: Worker[] = [];

  /** Starts threads until `channels` are waiting; any beyond are ended. */
  warm(channels: number): void {
    while (this.idle.length > channels) void this.idle.pop()!.terminate();
    while (this.idle.length < channels) {
      const worker = startTsWorker(ENTRY, { name: 'multifd-recv' });
      // A thread that dies while waiting is simply not handed out.
      const drop = () => (this.idle = this.idle.filter((w) => w !== worker));
      worker.once('error', drop);
      worker.once('exit', drop);
      this.idle.push(worker);
    }
  }

  /** `channels` waiting threads (started now if the pool holds fewer); the caller owns them. */
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
