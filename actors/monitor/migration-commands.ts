import { defineCommand, type QmpCommand, type QmpCommandContext } from '../../protocols/qmp/command.js';
import { FDSET_PATH } from '../../protocols/qmp/fd-sets.js';
import { genericError } from '../../protocols/qmp/errors.js';
import { NO_ARGUMENTS, qapi } from '../../protocols/qmp/schema.js';
import type { JsonValue } from '../../protocols/qmp/types.js';
import { migrationStatuses } from '../../machines/status.js';
import {
  refuseMigrate, refuseMigrateCancel, refuseMigrateContinue, refuseMigratePause, refuseMigrateStartPostcopy,
} from '../../machines/refusals.js';
import { isRunning } from '../../machines/status.js';
import { MIGRATE_SET_CAPABILITIES_ARGS, queryCapabilities } from '../options/capabilities.js';
import { MIGRATE_SET_PARAMETERS_ARGS, queryParameters, type MigrateSetParameters } from '../options/parameters.js';
import { channelsToUri } from '../../protocols/transport/migration-channel.js';
import { descriptorNotFound } from '../../protocols/transport/descriptor-paths.js';
import { CONNECT_TIMEOUT_MS } from '../../protocols/transport/outgoing.js';
import { multiChannelRefusal, outgoingUriError, parseMigrationUri, recoveryUriRefusal } from '../../protocols/transport/uri.js';
import type { MonitorHost } from './host.js';
import { queryMigrate } from './query-migrate.js';

const CHANNELS = qapi.optional(qapi.array(qapi.object({ 'channel-type': qapi.enumOf(['main'] as const), addr: qapi.any })));

/** migrate, migrate-incoming, migrate_cancel, migrate-continue, query-migrate and the option commands. */
export function migrationCommands(host: MonitorHost): [string, QmpCommand][] {
  return [
    ['migrate', defineCommand({
      args: qapi.object({
        uri: qapi.optional(qapi.str),
        channels: CHANNELS,
        blk: qapi.optional(qapi.bool),
        inc: qapi.optional(qapi.bool),
        detach: qapi.optional(qapi.bool),
        resume: qapi.optional(qapi.bool),
      }),
      run: (args, ctx) => {
        const requested = oneUri('migrate', args.uri, args.channels);
        if (args.blk) host.warn("parameter 'blk' is deprecated; use blockdev-mirror with NBD instead");
        if (args.inc) host.warn("parameter 'inc' is deprecated; use blockdev-mirror with NBD instead");
        if (args.blk || args.inc) throw genericError('livemig guests have no block devices: block migration (blk/inc) is not available');
        const command = {
          type: 'migrate' as const,
          uri: requested,
          resume: args.resume ?? false,
          runState: host.guest.runState,
          blockers: host.guest.blockers(),
          capabilities: host.options.enabled(),
        };
        const unusable = multiChannelRefusal(requested, host.options.needsSeveralChannels());
        if (unusable) throw genericError(unusable);
        const refusal = refuseMigrate(host.sourceStatus, command) ?? (command.resume ? recoveryUriRefusal(requested) ?? resumeUnderway(host) : null);
        if (refusal) throw genericError(refusal);
        // Only a migration that starts uses a getfd name up, as in QEMU.
        const uri = withNamedFd(requested, ctx);
        host.sendToSource({ ...command, uri });
        // As in QEMU, an unknown transport still starts (setup) and fails the
        // migration, and the command says why; the actor reports the failure.
        const badUri = outgoingUriError(uri) ?? descriptorRefusal(uri, 'outgoing', host);
        if (badUri) throw genericError(badUri);
        return {};
      },
    })],
    ['migrate-incoming', defineCommand({
      args: qapi.object({ uri: qapi.optional(qapi.str), channels: CHANNELS, 'exit-on-error': qapi.optional(qapi.bool) }),
      run: async (args, ctx) => {
        const uri = oneUri('migrate-incoming', args.uri, args.channels);
        await host.startIncoming(uri, args['exit-on-error'] ?? true, (checked) => withNamedFd(checked, ctx));
        return {};
      },
    })],
    ['migrate_cancel', defineCommand({
      args: NO_ARGUMENTS,
      run: () => {
        const refusal = refuseMigrateCancel(host.sourceStatus);
        if (refusal) throw genericError(refusal);
        host.sendToSource({ type: 'migrate_cancel' });
        return {};
      },
    })],
    ['migrate-continue', defineCommand({
      args: qapi.object({ state: qapi.enumOf(migrationStatuses) }),
      run: ({ state }) => {
        const refusal = refuseMigrateContinue(host.sourceStatus, state);
        if (refusal) throw genericError(refusal);
        host.sendToSource({ type: 'migrate-continue', state });
        return {};
      },
    })],
    // QEMU 8.2: the migration's threads while one runs (QEMU 7.2 has no such command).
    ['query-migrationthreads', defineCommand({
      args: NO_ARGUMENTS,
      run: () => host.migrationThreads().map(({ name, tid }) => ({ name, 'thread-id': tid })),
    })],
    ['migrate-pause', defineCommand({
      args: NO_ARGUMENTS,
      run: () => {
        const refusal = refuseMigratePause(host.sourceStatus, host.destinationStatus);
        if (refusal) throw genericError(refusal);
        // The source side first, as QEMU looks.
        const source = host.sourceStatus;
        if (source === 'postcopy-active' || source === 'postcopy-recover') host.sendToSource({ type: 'migrate-pause' });
        else host.sendToDestination({ type: 'migrate-pause' });
        return {};
      },
    })],
    ['migrate-recover', defineCommand({
      args: qapi.object({ uri: qapi.str }),
      run: async ({ uri }) => {
        await host.recoverIncoming(uri);
        return {};
      },
    })],
    ['migrate-start-postcopy', defineCommand({
      args: NO_ARGUMENTS,
      run: () => {
        const refusal = refuseMigrateStartPostcopy(host.sourceStatus, host.options.caps['postcopy-ram']);
        if (refusal) throw genericError(refusal);
        // Only a request, as in QEMU: taken by a running migration, pointless (and harmless) once it is over.
        host.sendToSource({ type: 'migrate-start-postcopy' });
        return {};
      },
    })],
    ['query-migrate', defineCommand({ args: NO_ARGUMENTS, run: () => queryMigrate(host) })],
    ['query-migrate-capabilities', defineCommand({
      args: NO_ARGUMENTS,
      run: () => queryCapabilities(host.options.caps) as unknown as JsonValue,
    })],
    ['migrate-set-capabilities', defineCommand({
      args: MIGRATE_SET_CAPABILITIES_ARGS,
      run: ({ capabilities }) => {
        host.options.setCapabilities(capabilities, {
          running: isRunning(host.sourceStatus) || host.sourceStatus === 'colo' || host.destinationStatus === 'colo',
          incomingStarted: host.incomingStarted,
          warn: (m) => host.warn(m),
        });
        host.warmMultifd();
        return {};
      },
    })],
    ['query-migrate-parameters', defineCommand({ args: NO_ARGUMENTS, run: () => queryParameters(host.options.params) })],
    ['migrate-set-parameters', defineCommand({
      args: MIGRATE_SET_PARAMETERS_ARGS,
      run: (args) => {
        host.options.setParameters(args as MigrateSetParameters);
        if (!isRunning(host.sourceStatus)) host.warmMultifd();
        // As in QEMU, a new x-checkpoint-delay takes a checkpoint at once, and the next one comes that long after it.
        if (args['x-checkpoint-delay'] !== undefined && host.sourceStatus === 'colo') host.sendToSource({ type: 'colo-checkpoint' });
        return {};
      },
    })],
  ];
}

/**
 * A resume already connecting (QEMU 8.2 has no status for it, and takes a
 * second one as a second connection): refused, so the address the
 * migration reports is the one it uses.
 */
function resumeUnderway(host: MonitorHost): string | null {
  if (!host.outgoing?.resumeConnecting) return null;
  return `A postcopy recovery is already connecting: it goes to postcopy-recover once connected, or stays paused if the connection fails (within ${CONNECT_TIMEOUT_MS / 1000} s)`;
}

/**
 * `fd:NAME`: the descriptor getfd gave that name on this connection, now
 * the migration's (QEMU's monitor_get_fd: the name is used up), named by
 * its number. A name no getfd gave stays, for the parser to refuse in
 * QEMU's words; a number is a descriptor the process already has.
 */
function withNamedFd(uri: string, ctx: QmpCommandContext): string {
  const name = /^fd:(.*)$/s.exec(uri)?.[1];
  if (name === undefined || /^[0-9]/.test(name)) return uri;
  const fd = ctx.namedFds.take(name);
  return fd === undefined ? uri : `fd:${fd}`;
}

/**
 * Why the descriptor a URI names cannot be used, in QEMU's words: `fd:N`
 * not open here, or `file:/dev/fdset/N` with no descriptor of the set open
 * for this direction. The migration fails at its start with the same words.
 */
function descriptorRefusal(uri: string, direction: 'outgoing' | 'incoming', host: Pick<MonitorHost, 'fdSets'>): string | null {
  const parsed = parseMigrationUri(uri, { direction });
  if (parsed.scheme === 'fd') return descriptorNotFound(parsed.fd) ?? null;
  if (parsed.scheme === 'file' && FDSET_PATH.test(parsed.path)) return host.fdSets.refusal(parsed.path, direction) ?? null;
  return null;
}

/** QEMU 8.2: exactly one of `uri` and `channels`, and only one (main) channel. */
function oneUri(command: string, uri: string | undefined, channels: { addr: unknown }[] | undefined): string {
  if (uri !== undefined && channels !== undefined) {
    throw genericError(`'uri' and 'channels' arguments are mutually exclusive; exactly one of the two should be present in '${command}' qmp command `);
  }
  if (uri !== undefined) return uri;
  if (channels === undefined) {
    throw genericError(`neither 'uri' or 'channels' argument are specified in '${command}' qmp command `);
  }
  if (channels.length !== 1) throw genericError('Channel list has more than one entries');
  return channelsToUri(channels[0]!.addr as JsonValue);
}
