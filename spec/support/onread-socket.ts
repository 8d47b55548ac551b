/**
 * A real loopback socket read the way the destination reads one: a server
 * writes `chunks` and ends, and a client reads them with net.Socket's
 * `onread` into the views `want()` hands out, reporting each read to
 * `commit(n)`. For decoder tests that need the kernel's own read sizes.
 */
import { once } from 'node:events';
import net from 'node:net';

/** Resolves once the socket closed: with the first error `want` or `commit` threw (the socket is then destroyed), else undefined. */
export async function readThroughOnread(chunks: Iterable<Uint8Array>, want: () => Uint8Array, commit: (n: number) => void): Promise<unknown> {
  const server = net.createServer((socket) => {
    for (const chunk of chunks) socket.write(chunk);
    socket.end();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  let failure: unknown;
  const socket = net.connect({
    port,
    host: '127.0.0.1',
    onread: {
      buffer: want,
      callback: (n) => {
        try {
          commit(n);
        } catch (error) {
          failure ??= error;
          socket.destroy();
        }
        return true;
      },
    },
  });
  // 'close' comes after 'end', and also after destroy() on a failure.
  await once(socket, 'close');
  server.close();
  return failure;
}
