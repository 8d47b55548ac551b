/**
 * One connection of the loopback reference: the sending end writes its slice
 * of a SharedArrayBuffer as 1 MiB views (no copy in user space), the
 * receiving end lets the kernel copy straight into its slice of a pre-faulted
 * SharedArrayBuffer (net.Socket's onread with a buffer function). This is
 * the best shape measured for Node.js here, so it is the ceiling livemig is
 * held to. Runs on a process's main thread or in a worker thread.
 */
import net from 'node:net';

/** Loopback moves 2.6× more with 1 MiB writes than with 128 KiB ones. */
const WRITE_SIZE = 1 << 20;
/** Sent back once the whole slice has landed, so the sender's clock covers delivery. */
const ACK = Buffer.from([0x06]);

export interface Slice {
  memory: SharedArrayBuffer;
  offset: number;
  length: number;
}

export interface ListeningChannel {
  port: number;
  /** Settles once every byte of the slice has landed (and the ack is written). */
  received: Promise<void>;
}

/**
 * Listens on 127.0.0.1 (a port of its own) for one connection and lands its
 * bytes in `slice`.
 */
export function listenChannel(slice: Slice): Promise<ListeningChannel> {
  let settle!: { resolve(): void; reject(err: Error): void };
  const received = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
  // Node 20's net.Server has no onread: accept paused, then move the handle
  // into a socket that has it (as protocols/transport/incoming.ts does).
  const server = net.createServer({ pauseOnConnect: true, noDelay: true }, (accepted) => {
    server.close();
    const holder = accepted as unknown as { _handle: unknown };
    const handle = holder._handle;
    holder._handle = null;
    const end = slice.offset + slice.length;
    let at = slice.offset;
    // A 0-length view would destroy the socket (ENOBUFS): past the slice, read into scratch.
    const scratch = new Uint8Array(64 << 10);
    const socket: net.Socket = new net.Socket({
      handle,
      readable: true,
      writable: true,
      onread: {
        buffer: () => (at < end ? new Uint8Array(slice.memory, at, end - at) : scratch),
        callback: (n: number) => {
          if (at >= end) {
            settle.reject(new Error(`the sender wrote ${n} bytes past its slice`));
            return false;
          }
          at += n;
          if (at === end) {
            socket.write(ACK);
            settle.resolve();
          }
          return true;
        },
      },
    } as net.SocketConstructorOpts);
    socket.on('error', (err) => settle.reject(err));
    socket.on('end', () => {
      if (at < end) settle.reject(new Error(`connection ended after ${at - slice.offset} of ${slice.length} bytes`));
      socket.end();
    });
    socket.resume();
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => {
      resolve({ port: (server.address() as net.AddressInfo).port, received });
    });
  });
}

/** Connects to `port` and writes `slice`; settles when the receiver acknowledges all of it. */
export function sendChannel(slice: Slice, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port, noDelay: true });
    const end = slice.offset + slice.length;
    let at = slice.offset;
    const pump = (): void => {
      while (at < end) {
        const n = Math.min(WRITE_SIZE, end - at);
        const more = socket.write(Buffer.from(slice.memory, at, n));
        at += n;
        if (!more) {
          socket.once('drain', pump);
          return;
        }
      }
    };
    socket.once('connect', pump);
    socket.once('data', () => {
      socket.end();
      resolve();
    });
    socket.once('error', reject);
    socket.once('close', () => reject(new Error('connection closed before the receiver acknowledged')));
  });
}
