/**
 * Paths that name a descriptor the process was handed rather than a file
 * (QEMU's `/dev/fdset/N`), and what a descriptor passed as `fd:` is: the
 * transports open such paths through the instance's fd sets, and take a
 * descriptor of any kind a file can be (socket, pipe, regular file).
 */
import { fstatSync } from 'node:fs';
import { TransportError } from './transport-error.js';
import { fdNotFound } from './uri.js';

/**
 * Opens `path` for a direction when it names a handed-over descriptor: a
 * duplicate the channel owns, and `release` to call once it is closed;
 * undefined for an ordinary path. Throws (QEMU's text) when the set has no
 * descriptor for that direction.
 */
export type DescriptorPaths = (path: string, direction: 'outgoing' | 'incoming') => { fd: number; release(): void } | undefined;

export type DescriptorKind = 'socket' | 'pipe' | 'file';

/** QEMU's words when this process has no descriptor `fd` open, or undefined when it has. */
export function descriptorNotFound(fd: number): string | undefined {
  try {
    fstatSync(fd);
    return undefined;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EBADF' ? fdNotFound(String(fd)) : undefined;
  }
}

/**
 * What a migration can do with descriptor `fd`: a socket carries both
 * ways, a pipe or a character device one way, a regular file one way
 * from its current offset. A directory cannot carry a stream: QEMU takes
 * the command and fails the migration on the first write or read, with
 * these words.
 */
export function descriptorKind(fd: number, direction: 'outgoing' | 'incoming'): DescriptorKind {
  let stat;
  try {
    stat = fstatSync(fd);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EBADF') throw new TransportError('BAD_FD', fdNotFound(String(fd)));
    throw new TransportError('BAD_FD', `File descriptor ${fd} is not usable: ${(err as Error).message}`);
  }
  if (stat.isSocket()) return 'socket';
  if (stat.isFIFO() || stat.isCharacterDevice()) return 'pipe';
  if (stat.isFile()) return 'file';
  throw new TransportError('IO', `Unable to ${direction === 'outgoing' ? 'write to' : 'read from'} file: Bad file descriptor`);
}
