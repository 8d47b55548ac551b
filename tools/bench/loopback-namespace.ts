/**
 * A network namespace of one migration's own, so that the bytes its
 * loopback interface carries are that migration's bytes on the wire,
 * counted by the kernel for both engines alike. The compression scenarios
 * need it: QEMU 7.2 counts a compressed multifd page as a whole page in
 * query-migrate's ram.transferred and multifd-bytes (measured: 64 MiB of
 * repeated text over multifd zstd showed transferred 67.5 MB while 0.45 MB
 * crossed the loopback). Both processes of a run are started in it
 * (`ip netns exec`, which execs them: their pids stay theirs); their
 * monitors are unix sockets, which a namespace does not divide.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { onTeardown } from './teardown.js';

export interface LoopbackNamespace {
  /** Put before a command to run it in the namespace. */
  readonly wrap: string[];
  /** Bytes its loopback has carried so far, read through a process inside it. */
  bytes(pid: number): number;
  /** Deletes the namespace (once its processes have exited). */
  remove(): Promise<void>;
}

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: 'pipe' });

/**
 * A new namespace, its loopback up; undefined where none can be made (not
 * root, no iproute2): the run then goes on in the bench's namespace,
 * without a count of its bytes on the wire.
 */
export function createLoopbackNamespace(tag: string): LoopbackNamespace | undefined {
  const name = `livemig-bench-${process.pid}-${tag}`.slice(0, 60);
  try {
    ip('netns', 'add', name);
    ip('-n', name, 'link', 'set', 'lo', 'up');
  } catch {
    try { ip('netns', 'del', name); } catch { /* never made */ }
    return undefined;
  }
  const remove = onTeardown(() => void ip('netns', 'del', name));
  return { wrap: ['ip', 'netns', 'exec', name], bytes: loopbackBytes, remove };
}

/** The loopback's received bytes in `pid`'s namespace (on loopback every byte sent is received once). */
function loopbackBytes(pid: number): number {
  const line = readFileSync(`/proc/${pid}/net/dev`, 'utf8').split('\n').find((l) => l.trim().startsWith('lo:'));
  if (!line) throw new Error(`no loopback interface in the namespace of process ${pid}`);
  return Number(line.slice(line.indexOf(':') + 1).trim().split(/\s+/)[0]);
}
