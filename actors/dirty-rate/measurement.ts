import { setTimeout as sleep } from 'node:timers/promises';
import type { Guest } from '../guest/guest.js';
import { startDirtyBitmap } from './dirty-bitmap.js';
import { startDirtyRing } from './dirty-ring.js';
import { startPageSampling } from './page-sampling.js';
import { convertTimeUnit } from './time-unit.js';
import type {
  DirtyRateConfig, DirtyRateInfo, DirtyRateMeasureMode, DirtyRateResult, DirtyRateStatus, DirtyRateVcpu, MeasuringRun, TimeUnit,
} from './types.js';

/** QEMU's DirtyRateStat: the last measurement's settings and figures. */
interface DirtyRateStat {
  /** MB/s; -1 until measured (and after, when there was nothing to sample). */
  dirtyRate: number;
  /** Seconds since the epoch. */
  startTime: number;
  /** Asked for, then how long it really took. */
  calcTimeMs: number;
  samplePages: number;
  vcpus: DirtyRateVcpu[] | undefined;
}

/**
 * The instance's dirty-rate measurement (QEMU's get_dirtyrate thread and
 * its state in migration/dirtyrate.c): one at a time, unstarted until the
 * first calc-dirty-rate, then measuring, then measured, its figures kept
 * for query-dirty-rate until the next one starts. It runs on its own,
 * whether or not a migration does, and never touches the migration's dirty
 * bitmap.
 *
 * @example
 * const measurement = new DirtyRateMeasurement(guest);
 * measurement.start({ calcTimeMs: 1000, samplePagesPerGiB: 512, mode: 'dirty-ring' });
 * measurement.query('second').status === 'measuring';
 * await measurement.done;
 * measurement.query('second')['vcpu-dirty-rate']; // [{ id: 0, 'dirty-rate': … }, …]
 */
export class DirtyRateMeasurement {
  private state: DirtyRateStatus = 'unstarted';
  private mode: DirtyRateMeasureMode = 'page-sampling';
  private stat: DirtyRateStat = { dirtyRate: -1, startTime: 0, calcTimeMs: 0, samplePages: 0, vcpus: undefined };
  /** Settles once the current measurement is over (at once when none runs). */
  done: Promise<void> = Promise.resolve();

  constructor(
    private readonly guest: Guest,
    /** Told when a measurement broke (it then reports a rate of -1). */
    private readonly warn: (message: string) => void = () => {},
  ) {}

  get status(): DirtyRateStatus {
    return this.state;
  }

  /** Starts a measurement of checked settings (config.ts); the caller made sure none runs. */
  start(config: DirtyRateConfig): void {
    if (this.state === 'measuring') throw new Error('a dirty rate measurement is already running');
    this.mode = config.mode;
    this.stat = { dirtyRate: -1, startTime: hostSeconds(), calcTimeMs: config.calcTimeMs, samplePages: config.samplePagesPerGiB, vcpus: undefined };
    this.state = 'measuring';
    this.done = this.measure(config).then(
      (result) => {
        this.stat.dirtyRate = result.dirtyRate;
        this.stat.vcpus = result.vcpus;
      },
      (err: unknown) => this.warn(`dirty rate measurement failed: ${err instanceof Error ? err.message : String(err)}`),
    ).finally(() => {
      this.state = 'measured';
    });
  }

  /** query-dirty-rate (QEMU's query_dirty_rate_info), calc-time in `unit`. */
  query(unit: TimeUnit): DirtyRateInfo {
    const measured = this.state === 'measured';
    const info: DirtyRateInfo = {
      ...(measured ? { 'dirty-rate': this.stat.dirtyRate } : {}),
      status: this.state,
      'start-time': this.stat.startTime,
      'calc-time': Number(convertTimeUnit(BigInt(this.stat.calcTimeMs), 'millisecond', unit)),
      'calc-time-unit': unit,
      // Once measured, 0 says no page was sampled.
      'sample-pages': measured && this.mode !== 'page-sampling' ? 0 : this.stat.samplePages,
      mode: this.mode,
    };
    if (measured && this.mode === 'dirty-ring') info['vcpu-dirty-rate'] = (this.stat.vcpus ?? []).map((v) => ({ ...v }));
    return info;
  }

  /** QEMU's calculate_dirtyrate with dirty_stat_wait: the mode's start, the rest of the calc time, its end. */
  private async measure(config: DirtyRateConfig): Promise<DirtyRateResult> {
    const started = performance.now();
    this.stat.startTime = hostSeconds();
    const run = await this.startMode(config);
    // Unref'd: a measurement alone must not keep the process up.
    await sleep(Math.max(0, config.calcTimeMs - (performance.now() - started)), undefined, { ref: false });
    // A timer may fire late: the rate is over the time that really passed.
    this.stat.calcTimeMs = Math.max(config.calcTimeMs, Math.round(performance.now() - started));
    return run.end(this.stat.calcTimeMs);
  }

  private startMode(config: DirtyRateConfig): MeasuringRun | Promise<MeasuringRun> {
    switch (config.mode) {
      case 'page-sampling':
        return startPageSampling(this.guest.blocks, config.samplePagesPerGiB);
      case 'dirty-bitmap':
        return startDirtyBitmap(this.guest.dirtyRateLog);
      case 'dirty-ring':
        return startDirtyRing(this.guest.dirtyRateLog);
    }
  }
}

/** QEMU_CLOCK_HOST in seconds: start-time. */
function hostSeconds(): number {
  return Math.floor(Date.now() / 1000);
}
