import { defineCommand, type QmpCommand } from '../../protocols/qmp/command.js';
import { genericError } from '../../protocols/qmp/errors.js';
import { NO_ARGUMENTS, qapi } from '../../protocols/qmp/schema.js';
import type { JsonValue } from '../../protocols/qmp/types.js';
import { migrationStatuses } from '../../machines/status.js';
import { refuseMigrate, refuseMigrateCancel, refuseMigrateContinue } from '../../machines/refusals.js';
import { isRunning } from '../../machines/status.js';
import { MIGRATE_SET_CAPABILITIES_ARGS, queryCapabilities } from '../migration/capabilities.js';
import { MIGRATE_SET_PARAMETERS_ARGS, queryParameters, type MigrateSetParameters } from '../migration/parameters.js';
import type { Instance } from '../instance/instance.js';
import { channelRefusal, channelsToUri, uriError } from './migration-channels.js';
import { queryMigrate } from './query-migrate.js';

const CHANNELS = qapi.optional(qapi.array(qapi.object({ 'channel-type': qapi.enumOf(['main'] as const), addr: qapi.any })));

/** migrate, migrate-incoming, migrate_cancel, migrate-continue, query-migrate and the option commands. */
export function migrationCommands(instance: Instance): [string, QmpCommand][] {
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
      run: (args) => {
        const uri = oneUri('migrate', args.uri, args.channels);
        if (args.blk) instance.log.warn("parameter 'blk' is deprecated; use blockdev-mirror with NBD instead");
        if (args.inc) instance.log.warn("parameter 'inc' is deprecated; use blockdev-mirror with NBD instead");
        if (args.blk || args.inc) throw genericError('livemig guests have no block devices: block migration (blk/inc) is not available');
        const command = {
          type: 'migrate' as const,
          uri,
          resume: args.resume ?? false,
          runState: instance.guest.runState,
          blockers: instance.guest.blockers(),
          capabilities: instance.options.enabled(),
        };
        const unusable = channelRefusal(uri, instance.options.caps);
        if (unusable) throw genericError(unusable);
        const refusal = refuseMigrate(instance.sourceStatus, command);
        if (refusal) throw genericError(refusal);
        instance.source.send(command);
        // As in QEMU, an unknown transport still starts (setup) and fails the
        // migration, and the command says why; the actor reports the failure.
        const badUri = uriError(uri);
        if (badUri) throw genericError(badUri);
        return {};
      },
    })],
    ['migrate-incoming', defineCommand({
      args: qapi.object({ uri: qapi.optional(qapi.str), channels: CHANNELS, 'exit-on-error': qapi.optional(qapi.bool) }),
      run: async (args) => {
        const uri = oneUri('migrate-incoming', args.uri, args.channels);
        await instance.startIncoming(uri, args['exit-on-error'] ?? true);
        return {};
      },
    })],
    ['migrate_cancel', defineCommand({
      args: NO_ARGUMENTS,
      run: () => {
        const refusal = refuseMigrateCancel(instance.sourceStatus);
        if (refusal) throw genericError(refusal);
        instance.source.send({ type: 'migrate_cancel' });
        return {};
      },
    })],
    ['migrate-continue', defineCommand({
      args: qapi.object({ state: qapi.enumOf(migrationStatuses) }),
      run: ({ state }) => {
        const refusal = refuseMigrateContinue(instance.sourceStatus, state);
        if (refusal) throw genericError(refusal);
        instance.source.send({ type: 'migrate-continue', state });
        return {};
      },
    })],
    ['query-migrate', defineCommand({ args: NO_ARGUMENTS, run: () => queryMigrate(instance) })],
    ['query-migrate-capabilities', defineCommand({
      args: NO_ARGUMENTS,
      run: () => queryCapabilities(instance.options.caps) as unknown as JsonValue,
    })],
    ['migrate-set-capabilities', defineCommand({
      args: MIGRATE_SET_CAPABILITIES_ARGS,
      run: ({ capabilities }) => {
        instance.options.setCapabilities(capabilities, {
          running: isRunning(instance.sourceStatus) || instance.sourceStatus === 'colo',
          incomingStarted: instance.incomingStarted,
          warn: (m) => instance.log.warn(m),
        });
        instance.warmMultifd();
        return {};
      },
    })],
    ['query-migrate-parameters', defineCommand({ args: NO_ARGUMENTS, run: () => queryParameters(instance.options.params) })],
    ['migrate-set-parameters', defineCommand({
      args: MIGRATE_SET_PARAMETERS_ARGS,
      run: (args) => {
        instance.options.setParameters(args as MigrateSetParameters);
        if (!isRunning(instance.sourceStatus)) instance.warmMultifd();
        return {};
      },
    })],
  ];
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
