/**
 * A monitor connection's named descriptors (QEMU's getfd / closefd): a
 * name given twice replaces, and closes, the descriptor it had; a command
 * that uses one by name (`migrate fd:NAME`) takes it, and closes it when
 * done; whatever is left is closed with the connection.
 */
import { closeDescriptors } from '../fd-passing.js';

export class NamedFds {
  private readonly fds = new Map<string, number>();

  set(name: string, fd: number): void {
    const old = this.fds.get(name);
    if (old !== undefined && old !== fd) closeDescriptors([old]);
    this.fds.set(name, fd);
  }

  /** The descriptor named `name`, now the caller's; undefined when there is none. */
  take(name: string): number | undefined {
    const fd = this.fds.get(name);
    this.fds.delete(name);
    return fd;
  }

  /** Closes the descriptor named `name`; false when there is none. */
  close(name: string): boolean {
    const fd = this.take(name);
    if (fd === undefined) return false;
    closeDescriptors([fd]);
    return true;
  }

  closeAll(): void {
    closeDescriptors(this.fds.values());
    this.fds.clear();
  }
}
