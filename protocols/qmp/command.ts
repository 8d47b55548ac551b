/**
 * A QMP command as a server's caller supplies it: the schema of its
 * arguments and the function that runs it. What `run` returns (or resolves
 * to) is the `return` value, `{}` when it returns nothing; a QmpError it
 * throws is the answer as is, any other exception a GenericError with its
 * message.
 */
import type { NamedFds } from './named-fds.js';
import type { ArgumentsOf, ObjectSchema } from './schema.js';

export interface QmpCommandContext {
  /** The session (connection) the request came on, numbered from 1 per server. */
  readonly sessionId: number;
  /** The request came as `exec-oob`. */
  readonly oob: boolean;
  /**
   * The descriptors passed with the request (SCM_RIGHTS, on a unix
   * monitor): the first, now the command's; the others are closed, as
   * QEMU's monitor does. Undefined when none came. Whatever the command
   * does not take is closed once it has run.
   */
  readonly takeFd: () => number | undefined;
  /** The connection's named descriptors (getfd). */
  readonly namedFds: NamedFds;
}

export interface QmpCommand<S extends ObjectSchema = ObjectSchema> {
  readonly args: S;
  /** QEMU's allow-oob: may be sent with `exec-oob` and run ahead of queued requests. */
  readonly allowOob?: boolean;
  run(args: ArgumentsOf<S>, ctx: QmpCommandContext): unknown;
}

export type QmpCommandTable = ReadonlyMap<string, QmpCommand>;

/**
 * Types a command's `run` from its schema.
 *
 * @example
 * const stop = defineCommand({ args: NO_ARGUMENTS, run: () => guest.stop() });
 * const table: QmpCommandTable = new Map([['stop', stop]]);
 */
export function defineCommand<S extends ObjectSchema>(command: QmpCommand<S>): QmpCommand {
  return command as unknown as QmpCommand;
}
