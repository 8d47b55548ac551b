import { Piscina } from 'piscina';
import { workerBundle, workerExecArgv } from '../threads/ts-worker.js';
import { channelThreads } from './channel-threads.js';

/**
 * The source's multifd worker threads, kept warm between migrations so
 * their start-up (~0.15 s each here: the thread, Piscina, the channel code)
 * is not part of every migration's setup time. Made when multifd is
 * turned on, warmed at once, reused by each migration with the same
 * channel count. Channels share threads when there are more of them than
 * cores (channel-threads.ts): each channel is a task, and a thread runs as
 * many at once as it hosts.
 */
export class MultifdSendPool {
  readonly pool: Piscina;
  private destroyed = false;

  constructor(readonly channels: number) {
    const threads = channelThreads(channels);
    this.pool = new Piscina({
      filename: workerBundle(new URL('./send-channel.ts', import.meta.url)).href,
      execArgv: workerExecArgv(),
      minThreads: threads,
      maxThreads: threads,
      // Piscina's default balancer gives each task to the least busy thread: channels spread evenly.
      concurrentTasksPerWorker: Math.ceil(channels / threads),
      idleTimeout: Infinity,
      // Workers own sockets: they must never block in Atomics.wait between tasks.
      atomics: 'disabled',
    });
    this.pool.on('error', () => {});
    // Loads the channel code in every worker now; a failure shows when a migration runs a task.
    Promise.all(Array.from({ length: threads }, () => this.pool.run(null, { name: 'warm' }))).catch(() => {});
  }

  get usable(): boolean {
    return !this.destroyed;
  }

  /** Ends the workers (and with them any socket they hold). */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    await this.pool.destroy();
  }
}
