import { readlinkSync } from 'node:fs';

/** This thread's id as the kernel knows it (/proc/thread-self names it), as QEMU's qemu_get_thread_id gives. */
export function osThreadId(): number {
  return Number(/\/task\/(\d+)$/.exec(readlinkSync('/proc/thread-self'))?.[1] ?? 0);
}
