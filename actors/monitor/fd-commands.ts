/**
 * Descriptors handed over the monitor, as QEMU's monitor/fds.c takes them:
 * getfd and closefd name a descriptor on this connection (for `fd:NAME`
 * URIs); add-fd, remove-fd and query-fdsets keep the process's fd sets
 * (for `/dev/fdset/N` paths). The descriptor comes with the command's
 * bytes (SCM_RIGHTS, on a unix monitor); the first is taken, others
 * closed. Texts are QEMU's (recorded from QEMU 7.2, which answers as 8.2).
 *
 * Where livemig differs: a descriptor sent with a command that does not
 * take it is closed once that command has run (QEMU keeps one until the
 * next message that carries descriptors, so a later getfd sent without
 * one could still claim it): nothing is ever left open unclaimed.
 */
import { defineCommand, type QmpCommand, type QmpCommandContext } from '../../protocols/qmp/command.js';
import { genericError } from '../../protocols/qmp/errors.js';
import { closeDescriptors, fdPassingMissing } from '../../protocols/fd-passing.js';
import { NO_ARGUMENTS, qapi } from '../../protocols/qmp/schema.js';
import type { MonitorHost } from './host.js';

/** The descriptor passed with the command, now the command's. */
function passedFd(ctx: QmpCommandContext): number {
  const fd = ctx.takeFd();
  if (fd !== undefined) return fd;
  const missing = fdPassingMissing();
  // Say so when this build cannot take descriptors at all, rather than blame the client.
  if (missing !== undefined) throw genericError(`No file descriptor supplied via SCM_RIGHTS: this livemig cannot receive descriptors (${missing})`);
  throw genericError('No file descriptor supplied via SCM_RIGHTS');
}

export function fdCommands(host: Pick<MonitorHost, 'fdSets'>): [string, QmpCommand][] {
  return [
    ['getfd', defineCommand({
      args: qapi.object({ fdname: qapi.str }),
      run: ({ fdname }, ctx) => {
        const fd = passedFd(ctx);
        if (/^[0-9]/.test(fdname)) {
          closeDescriptors([fd]);
          throw genericError("Parameter 'fdname' expects a name not starting with a digit");
        }
        ctx.namedFds.set(fdname, fd);
        return {};
      },
    })],
    ['closefd', defineCommand({
      args: qapi.object({ fdname: qapi.str }),
      run: ({ fdname }, ctx) => {
        if (!ctx.namedFds.close(fdname)) throw genericError(`File descriptor named '${fdname}' not found`);
        return {};
      },
    })],
    ['add-fd', defineCommand({
      args: qapi.object({ 'fdset-id': qapi.optional(qapi.int), opaque: qapi.optional(qapi.str) }),
      run: (args, ctx) => {
        const fd = passedFd(ctx);
        const id = args['fdset-id'];
        if (id !== undefined && id < 0) {
          closeDescriptors([fd]);
          throw genericError("Parameter 'fdset-id' expects a non-negative value");
        }
        return host.fdSets.add(fd, id === undefined ? undefined : Number(id), args.opaque);
      },
    })],
    ['remove-fd', defineCommand({
      args: qapi.object({ 'fdset-id': qapi.int, fd: qapi.optional(qapi.int) }),
      run: (args) => {
        const id = Number(args['fdset-id']);
        const fd = args.fd === undefined ? undefined : Number(args.fd);
        if (!host.fdSets.remove(id, fd)) {
          throw genericError(`File descriptor named 'fdset-id:${id}${fd === undefined ? '' : `, fd:${fd}`}' not found`);
        }
        return {};
      },
    })],
    ['query-fdsets', defineCommand({ args: NO_ARGUMENTS, run: () => host.fdSets.query() })],
  ];
}
