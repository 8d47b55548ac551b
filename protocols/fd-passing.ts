/**
 * Descriptors passed with QMP commands over a unix socket (SCM_RIGHTS), as
 * libvirt hands QEMU a migration channel: the project's small native addon
 * (native/fd-passing.c beside this file) reads the monitor's socket with
 * recvmsg and sends with sendmsg; what the bytes mean stays in TypeScript.
 */
import { closeSync } from 'node:fs';
import type { Socket } from 'node:net';
import { nativeAddon } from './native-addon.js';

interface FdPassingAddon {
  watch(fd: number, onRead: (data: Buffer | null, fds: number[], errno: number) => void): object;
  pause(handle: object): void;
  resume(handle: object): void;
  unwatch(handle: object): void;
  sendWithFds(fd: number, data: Buffer, fds: number[]): number;
  accessMode(fd: number): number;
  dup(fd: number): number;
}

const addon = () => nativeAddon<FdPassingAddon>('fd_passing', 'descriptor-passing');

/** Why descriptors cannot be passed here (the addon was not built), or undefined when they can. */
export function fdPassingMissing(): string | undefined {
  return addon().missing;
}

/** The OS descriptor under a connected net.Socket (Node keeps it on the socket's handle). */
function socketFd(socket: Socket): number {
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new Error('the socket has no descriptor to pass descriptors over');
  return fd;
}

export interface DescriptorReaderEvents {
  /** Bytes read, and the descriptors that came with them (owned by the receiver from here: close what is not kept). */
  data(chunk: Buffer, fds: number[]): void;
  /** The peer has finished sending. */
  end(): void;
  error(err: Error): void;
}

/**
 * Reads a unix socket that Node itself must not read (a server's socket
 * accepted with pauseOnConnect, never resumed): bytes with their
 * descriptors. The socket stays Node's for writing and closing; stop()
 * once it closes.
 */
export class DescriptorReader {
  private stopped = false;

  private constructor(private readonly handle: object) {}

  static start(socket: Socket, on: DescriptorReaderEvents): DescriptorReader {
    const { addon: native, missing } = addon();
    if (!native) throw new Error(missing);
    const reader: DescriptorReader = new DescriptorReader(
      native.watch(socketFd(socket), (data, fds, errno) => {
        if (data !== null) on.data(data, fds);
        else if (errno === 0) on.end();
        else on.error(Object.assign(new Error(`reading the monitor socket failed (errno ${errno})`), { errno }));
      }),
    );
    return reader;
  }

  pause(): void {
    if (!this.stopped) addon().addon!.pause(this.handle);
  }

  resume(): void {
    if (!this.stopped) addon().addon!.resume(this.handle);
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    addon().addon!.unwatch(this.handle);
  }
}

/** How long sendWithDescriptors waits for Node's own queued writes, or for room in the socket. */
const SEND_WAIT_MS = 5_000;

/**
 * Writes `bytes` to a connected unix socket with `fds` attached to them,
 * after whatever Node still has queued on it, so the order of writes holds.
 * The descriptors stay the caller's (the kernel gives the peer copies).
 */
export async function sendWithDescriptors(socket: Socket, bytes: Buffer, fds: number[]): Promise<void> {
  const { addon: native, missing } = addon();
  if (!native) throw new Error(missing);
  const deadline = Date.now() + SEND_WAIT_MS;
  const pause = () => new Promise((resolve) => setTimeout(resolve, 1));
  while (socket.writableLength > 0) {
    if (Date.now() > deadline) throw new Error('the socket did not take its queued writes');
    await pause();
  }
  for (;;) {
    try {
      const sent = native.sendWithFds(socketFd(socket), bytes, fds);
      // The descriptors went with the first byte; the rest is ordinary data.
      if (sent < bytes.length) socket.write(bytes.subarray(sent));
      return;
    } catch (err) {
      if ((err as { code?: string }).code !== 'EAGAIN' || Date.now() > deadline) throw err;
      await pause();
    }
  }
}

/** What a descriptor is open for: O_RDONLY (0), O_WRONLY (1) or O_RDWR (2). */
export function accessMode(fd: number): number {
  const { addon: native, missing } = addon();
  if (!native) throw new Error(missing);
  return native.accessMode(fd);
}

/** A duplicate of `fd` (close-on-exec), the caller's to close. */
export function duplicate(fd: number): number {
  const { addon: native, missing } = addon();
  if (!native) throw new Error(missing);
  return native.dup(fd);
}

/** Closes descriptors nobody claimed; one already closed is no matter. */
export function closeDescriptors(fds: Iterable<number>): void {
  for (const fd of fds) {
    try {
      closeSync(fd);
    } catch {
      // Already closed (or never ours): nothing to free.
    }
  }
}
