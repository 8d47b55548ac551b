import { Piscina } from 'piscina';
import { workerBundle, workerExecArgv } from '../threads/ts-worker.js';

/**
 * The source's multifd worker threads, kept warm between migrations so
 * their start-up (~0.15 s each here: the thread, Piscina, the channel code
 * and zstd's WASM) is not part of every migration's setup time. Made when
 * multifd is turned on, warmed at once, reused by each migration with the
 * same channel count.
 */
export class MultifdSendPool {
  readonly pool: Piscina;
  /** Resolves once every worker has loaded the channel code. */
  readonly warmed: Promise<void>;
  private destroyed = false;

  constructor(readonly channels: number) {
    this.pool = new Piscina({
      filename: workerBundle(new URL('./send-channel.ts', import.meta.url)).href,
      execArgv: workerExecArgv(),
      minThreads: channels,
      maxThreads: channels,
      concurrentTasksPerWorker: 1,
      idleTimeout: Infinity,
      // Workers own sockets: they must never block in Atomics.wait between tasks.
      atomics: 'disabled',
    });
    this.pool.on('error', () => {});
    this.warmed = Promise.all(Array.from({ length: channels }, () => this.pool.run(null, { name: 'warm' }))).then(() => {});
    this.warmed.catch(() => {});
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
