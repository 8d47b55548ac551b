/**
 * A small filesystem for the `full-tmpfs` fault: a tmpfs the harness mounts
 * (as root) on a temporary directory of its own, smaller than the guest's
 * RAM, so a `file:` migration onto it runs out of space mid-stream as a
 * full disk does in the field (ENOSPC from write(2)). Unmounted and removed
 * after the run; a crashed earlier campaign's mounts are found by their
 * name's prefix and pid and removed at start (removeStaleMounts).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { alive } from './campaign-alive.js';

const PREFIX = 'lmchaos-tmpfs-';

function run(command: string, ...args: string[]): void {
  execFileSync(command, args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 });
}

/** Mount points of the machine (the harness's mount namespace), from /proc/self/mounts. */
function mountPoints(): string[] {
  return readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[1])
    .filter((point): point is string => point !== undefined)
    .map((point) => point.replace(/\\040/g, ' '));
}

export class SmallTmpfs {
  private constructor(
    /** The mount point. */
    readonly dir: string,
    readonly sizeBytes: number,
  ) {}

  /** Mounts a tmpfs of `sizeBytes` (rounded up to whole pages by the kernel; never 0, which would mean no limit). */
  static mount(sizeBytes: number): SmallTmpfs {
    if (!(sizeBytes >= 4096)) throw new Error(`a tmpfs of ${sizeBytes} bytes: at least a page, as size=0 means unlimited`);
    const dir = mkdtempSync(join(tmpdir(), `${PREFIX}${process.pid}-`));
    try {
      run('mount', '-t', 'tmpfs', '-o', `size=${sizeBytes},mode=0700`, 'tmpfs', dir);
    } catch (error) {
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`could not mount a tmpfs on ${dir}: ${(error as Error).message.split('\n')[0]}`);
    }
    return new SmallTmpfs(dir, sizeBytes);
  }

  /** The migration's target file on it. */
  get file(): string {
    return join(this.dir, 'stream');
  }

  get mounted(): boolean {
    return mountPoints().includes(this.dir);
  }

  /**
   * Unmounts and removes the directory. A plain umount fails (EBUSY) while
   * any process holds a file on it: then it says so, and detaches it lazily
   * so the run leaks nothing all the same.
   */
  remove(): string | undefined {
    let busy: string | undefined;
    if (this.mounted) {
      try {
        run('umount', this.dir);
      } catch (error) {
        busy = `the tmpfs on ${this.dir} could not be unmounted: ${(error as Error).message.split('\n')[0]}`;
        try {
          run('umount', '-l', this.dir);
        } catch {}
      }
    }
    if (!this.mounted) rmSync(this.dir, { recursive: true, force: true });
    return busy;
  }

  /** What of it is still there: its mount, or its directory. */
  leftovers(): string[] {
    const found: string[] = [];
    if (this.mounted) found.push(`tmpfs mounted on ${this.dir}`);
    else if (readdirSync(tmpdir()).includes(this.dir.slice(tmpdir().length + 1))) found.push(`directory ${this.dir}`);
    return found;
  }
}

/** Unmounts and removes the small tmpfs mounts of campaigns no longer running; their paths. */
export function removeStaleMounts(): string[] {
  const removed: string[] = [];
  const mounted = mountPoints();
  for (const name of readdirSync(tmpdir())) {
    const pid = Number(new RegExp(`^${PREFIX}(\\d+)-`).exec(name)?.[1]);
    if (!pid || (pid !== process.pid && alive(pid))) continue;
    const dir = join(tmpdir(), name);
    if (mounted.includes(dir)) {
      try {
        run('umount', '-l', dir);
      } catch {
        continue;
      }
    }
    rmSync(dir, { recursive: true, force: true });
    removed.push(dir);
  }
  return removed;
}
