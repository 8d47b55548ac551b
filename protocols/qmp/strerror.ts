import os from 'node:os';
import util from 'node:util';

/** An errno worded as C's strerror words it, as QEMU prints it ("No such file or directory"). */
export function strerror(err: NodeJS.ErrnoException): string {
  const errno = err.code ? os.constants.errno[err.code as keyof typeof os.constants.errno] : undefined;
  const text = errno !== undefined ? util.getSystemErrorMap().get(-errno)?.[1] : undefined;
  return text ? text[0]!.toUpperCase() + text.slice(1) : err.message;
}
