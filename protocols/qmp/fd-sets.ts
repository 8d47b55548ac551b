/**
 * QEMU's fd sets (add-fd, remove-fd, query-fdsets): descriptors an
 * orchestrator hands the process, grouped under numbered sets, which a
 * path `/dev/fdset/N` then names wherever a file is opened (a `file:`
 * migration). Opening one hands out a duplicate of the set's first
 * descriptor whose access mode is the one asked for, as QEMU's
 * monitor_fdset_dup_fd_add does.
 *
 * Removal is QEMU's too: a removed descriptor is closed, and its set
 * dropped once empty, only while the guest runs and no duplicate of the
 * set is out; until then it stays listed (QEMU keeps descriptors a
 * destination still needs before its guest has run).
 */
import { accessMode, closeDescriptors, duplicate } from '../fd-passing.js';

export interface FdSetFd {
  fd: number;
  opaque?: string;
  removed: boolean;
}

/** `/dev/fdset/N`: the set a path names, or undefined for any other path. */
export const FDSET_PATH = /^\/dev\/fdset\/(\d+)$/;

/** O_ACCMODE's values, and the flags QEMU opens a file: migration with (named in its error). */
const O_RDONLY = 0;
const O_WRONLY = 1;
const OUTGOING_FLAGS = 0o1101; // O_CREAT | O_WRONLY | O_TRUNC
const INCOMING_FLAGS = 0; // O_RDONLY

export class FdSets {
  /** By set id; each set's descriptors in the order they were added. */
  private readonly sets = new Map<number, FdSetFd[]>();
  /** Duplicates handed out and not yet given back, by set. */
  private readonly dups = new Map<number, number>();

  /** @param running  whether the guest runs now (removal waits until it does) */
  constructor(private readonly running: () => boolean) {}

  /** add-fd: `fd` joins set `id` (by default the lowest id no set has). */
  add(fd: number, id: number | undefined, opaque: string | undefined): { 'fdset-id': number; fd: number } {
    let setId = id;
    if (setId === undefined) for (setId = 0; this.sets.has(setId); setId++);
    const set = this.sets.get(setId) ?? [];
    set.push({ fd, ...(opaque === undefined ? {} : { opaque }), removed: false });
    this.sets.set(setId, set);
    return { 'fdset-id': setId, fd };
  }

  /**
   * remove-fd: marks one descriptor of set `id`, or the whole set, removed.
   * @returns false when there is no such set or descriptor (or it was removed and closed already)
   */
  remove(id: number, fd: number | undefined): boolean {
    const set = this.sets.get(id);
    if (set === undefined) return false;
    const chosen = fd === undefined ? set : set.filter((f) => f.fd === fd);
    if (chosen.length === 0) return false;
    for (const f of chosen) f.removed = true;
    this.cleanup(id);
    return true;
  }

  /** query-fdsets: newest set id first, as QEMU lists them; each set's descriptors as added. */
  query(): { 'fdset-id': number; fds: { fd: number; opaque?: string }[] }[] {
    return [...this.sets.entries()]
      .sort(([a], [b]) => b - a)
      .map(([id, set]) => ({ 'fdset-id': id, fds: set.map(({ fd, opaque }) => ({ fd, ...(opaque === undefined ? {} : { opaque }) })) }));
  }

  /**
   * Why `/dev/fdset/N` cannot be opened for `direction`, in QEMU's words,
   * or undefined when it can.
   */
  refusal(path: string, direction: 'outgoing' | 'incoming'): string | undefined {
    const found = this.find(path, direction);
    return typeof found === 'string' ? found : undefined;
  }

  /**
   * Opens `/dev/fdset/N` for `direction`: a duplicate of the set's
   * descriptor whose access mode fits (write-only out, read-only in),
   * the caller's to close, then release().
   * @throws Error in QEMU's words when there is none
   */
  open(path: string, direction: 'outgoing' | 'incoming'): number {
    const found = this.find(path, direction);
    if (typeof found === 'string') throw new Error(found);
    const copy = duplicate(found.fd);
    this.dups.set(found.id, (this.dups.get(found.id) ?? 0) + 1);
    return copy;
  }

  /** A duplicate open() handed out for `path` is closed: removed descriptors may go now. */
  release(path: string): void {
    const id = Number(FDSET_PATH.exec(path)?.[1]);
    const left = (this.dups.get(id) ?? 0) - 1;
    if (left > 0) this.dups.set(id, left);
    else this.dups.delete(id);
    this.cleanup(id);
  }

  /** Everything, at exit. */
  closeAll(): void {
    for (const set of this.sets.values()) closeDescriptors(set.map((f) => f.fd));
    this.sets.clear();
  }

  private find(path: string, direction: 'outgoing' | 'incoming'): { id: number; fd: number } | string {
    const flags = direction === 'outgoing' ? OUTGOING_FLAGS : INCOMING_FLAGS;
    const match = FDSET_PATH.exec(path);
    if (match === null) return `Could not parse fdset ${path}`;
    const id = Number(match[1]);
    const set = this.sets.get(id);
    const why = (errno: string) => `Could not dup FD for ${path} flags ${flags.toString(16)}: ${errno}`;
    if (set === undefined) return why('No such file or directory');
    const wanted = direction === 'outgoing' ? O_WRONLY : O_RDONLY;
    const fit = set.find((f) => !f.removed && accessMode(f.fd) === wanted);
    return fit === undefined ? why('Permission denied') : { id, fd: fit.fd };
  }

  private cleanup(id: number): void {
    const set = this.sets.get(id);
    if (set === undefined || !this.running() || this.dups.has(id)) return;
    closeDescriptors(set.filter((f) => f.removed).map((f) => f.fd));
    const kept = set.filter((f) => !f.removed);
    if (kept.length > 0) this.sets.set(id, kept);
    else this.sets.delete(id);
  }
}
