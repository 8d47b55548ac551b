/**
 * QEMU 8.2's MigrationCapability set, the rules of migrate_caps_check with
 * QEMU's texts, and what livemig does with each capability.
 *
 * @example
 * const caps = applyCapabilities(DEFAULT_CAPABILITIES, [{ capability: 'events', state: true }], {
 *   migrationRunning: false, incomingStarted: false,
 *   parameters: { 'multifd-compression': 'none', 'tls-creds': '' },
 * });
 */
import { migrationActive } from '../../machines/refusals.js';
import { releaseUnavailable } from '../guest/release-pages.js';
import { genericError } from '../../protocols/qmp/errors.js';
import { qapi } from '../../protocols/qmp/schema.js';
import type { MigrationParameters } from './parameters.js';
import { parseFlagBool, splitFlag, StartupFlagError } from './startup-flag.js';

/** In QAPI order, which is also query-migrate-capabilities' order. All default off. */
export const MIGRATION_CAPABILITIES = [
  'xbzrle',
  'rdma-pin-all',
  'auto-converge',
  'zero-blocks',
  'compress',
  'events',
  'postcopy-ram',
  'x-colo',
  'release-ram',
  'block',
  'return-path',
  'pause-before-switchover',
  'multifd',
  'dirty-bitmaps',
  'postcopy-blocktime',
  'late-block-activate',
  'x-ignore-shared',
  'validate-uuid',
  'background-snapshot',
  'zero-copy-send',
  'postcopy-preempt',
  'switchover-ack',
  'dirty-limit',
] as const;

export type MigrationCapability = (typeof MIGRATION_CAPABILITIES)[number];
export type MigrationCapabilities = Readonly<Record<MigrationCapability, boolean>>;
export interface MigrationCapabilityStatus {
  capability: MigrationCapability;
  state: boolean;
}

export const DEFAULT_CAPABILITIES: MigrationCapabilities = Object.freeze(
  Object.fromEntries(MIGRATION_CAPABILITIES.map((c) => [c, false])) as Record<MigrationCapability, boolean>,
);

/**
 * What livemig does with a capability: `built` works; `noop` is accepted
 * and has nothing here to act on (livemig guests have no block devices or
 * block dirty bitmaps); `refused` cannot be turned on until it is built.
 * Flip an entry when its feature lands; the README's table follows this one.
 */
export type CapabilitySupport = 'built' | 'noop' | 'refused';

export const CAPABILITY_SUPPORT: Readonly<Record<MigrationCapability, CapabilitySupport>> = {
  xbzrle: 'built',
  'rdma-pin-all': 'refused',
  'auto-converge': 'built',
  'zero-blocks': 'noop',
  compress: 'refused',
  events: 'built',
  'postcopy-ram': 'built',
  'x-colo': 'built',
  'release-ram': 'built',
  block: 'noop',
  'return-path': 'built',
  'pause-before-switchover': 'built',
  multifd: 'built',
  'dirty-bitmaps': 'noop',
  'postcopy-blocktime': 'built',
  'late-block-activate': 'noop',
  'x-ignore-shared': 'refused',
  'validate-uuid': 'built',
  'background-snapshot': 'built',
  'zero-copy-send': 'refused',
  'postcopy-preempt': 'built',
  'switchover-ack': 'built',
  'dirty-limit': 'built',
};

export interface CapabilityCheckContext {
  /** The capabilities in force before the change; all off for startup values. */
  current: MigrationCapabilities;
  /** This instance's incoming migration has started (`migrate-incoming`, or `--incoming URI`). */
  incomingStarted: boolean;
  /** The parameters in force (the zero-copy rule reads them). */
  parameters: Pick<MigrationParameters, 'multifd-compression' | 'tls-creds'>;
  /** Receives QEMU's deprecation warnings (warn_report); they do not refuse anything. */
  warn?: (message: string) => void;
}

/** The capabilities that background-snapshot excludes, in QEMU's order. */
const BACKGROUND_SNAPSHOT_EXCLUDES: readonly MigrationCapability[] = [
  'postcopy-ram',
  'dirty-bitmaps',
  'postcopy-blocktime',
  'late-block-activate',
  'return-path',
  'multifd',
  'pause-before-switchover',
  'auto-converge',
  'release-ram',
  'rdma-pin-all',
  'compress',
  'xbzrle',
  'x-colo',
  'validate-uuid',
  'zero-copy-send',
];

/**
 * migrate_caps_check: refuses `next` with the first rule it breaks, in
 * QEMU's evaluation order, then refuses any capability livemig has not
 * built. QEMU's host-support probes have livemig answers:
 * - block: livemig behaves as built with old-style block migration (the
 *   capability is a no-op), so only the deprecation warning remains;
 * - x-colo: COLO is part of livemig's design, so "compiled without
 *   replication" never applies; its checkpoints travel on a precopy
 *   migration's main channel, so x-colo with postcopy-ram or multifd is
 *   refused (QEMU would accept them and never reach colo);
 * - postcopy-ram on a destination: livemig's page faults go through its own
 *   MMU, not userfaultfd, so the host always supports it;
 * - background-snapshot: write protection is also livemig's MMU, supported
 *   for every guest memory layout;
 * - zero-copy-send: livemig runs on Linux, so the Linux rule applies;
 * - dirty-limit: livemig's vCPUs count and cap the pages they dirty
 *   themselves (actors/guest/dirty-limit.ts), so "dirty-limit requires KVM
 *   with accelerator property 'dirty-ring-size' set" never applies.
 * DESIGN §10 takes QEMU 10's rule for postcopy-ram with multifd (allowed,
 * multifd carrying precopy pages only), so 8.2's "Postcopy is not yet
 * compatible with multifd" is not applied. "must be set before incoming
 * starts" fires only when the capability is being turned on, as QEMU later
 * fixed it: 8.2 also refused every other change while multifd was on.
 *
 * @throws QmpError (GenericError)
 */
export function checkCapabilities(next: MigrationCapabilities, ctx: CapabilityCheckContext): void {
  const { current, incomingStarted, parameters } = ctx;
  if (next.block) ctx.warn?.('block migration is deprecated; use blockdev-mirror with NBD instead');
  if (next.compress) ctx.warn?.('old compression method is deprecated; use multifd compression methods instead');

  if (next['postcopy-ram'] && next['x-ignore-shared']) throw genericError('Postcopy is not compatible with ignore-shared');

  if (next['background-snapshot']) {
    const clash = BACKGROUND_SNAPSHOT_EXCLUDES.find((c) => next[c]);
    if (clash !== undefined) throw genericError(`Background-snapshot is not compatible with ${clash}`);
  }

  if (
    next['zero-copy-send'] &&
    (!next.multifd || next.compress || next.xbzrle || parameters['multifd-compression'] !== 'none' || parameters['tls-creds'] !== '')
  ) {
    throw genericError('Zero copy only available for non-compressed non-TLS multifd migration');
  }

  if (next['postcopy-preempt']) {
    if (!next['postcopy-ram']) throw genericError('Postcopy preempt requires postcopy-ram');
    if (next.compress) throw genericError('Postcopy preempt not compatible with compress');
    if (!current['postcopy-preempt'] && incomingStarted) throw genericError('Postcopy preempt must be set before incoming starts');
  }

  if (next.multifd) {
    if (next.compress) throw genericError('Multifd is not compatible with compress');
    if (!current.multifd && incomingStarted) throw genericError('Multifd must be set before incoming starts');
  }

  if (next['switchover-ack'] && !next['return-path']) {
    throw genericError("Capability 'switchover-ack' requires capability 'return-path'");
  }

  for (const clash of ['postcopy-ram', 'multifd'] as const) {
    if (next['x-colo'] && next[clash]) throw genericError(`x-colo is not compatible with ${clash}: COLO checkpoints travel on the main channel of a precopy migration`);
  }

  if (next['dirty-limit'] && next['auto-converge']) {
    throw genericError('dirty-limit conflicts with auto-converge either of then available currently');
  }

  if (next.multifd && next.xbzrle) throw genericError('Multifd is not compatible with xbzrle');
  if (next.compress && next.xbzrle) throw genericError('Compression is not compatible with xbzrle');

  const unbuilt = MIGRATION_CAPABILITIES.find((c) => next[c] && CAPABILITY_SUPPORT[c] === 'refused');
  if (unbuilt !== undefined) throw genericError(`Capability '${unbuilt}' is not supported by livemig yet`);
  const noRelease = next['release-ram'] ? releaseUnavailable() : undefined;
  if (noRelease !== undefined) throw genericError(`Capability 'release-ram' cannot work here: ${noRelease}`);
}

export interface SetCapabilitiesContext extends Omit<CapabilityCheckContext, 'current'> {
  /** A migration is running or in COLO: capabilities are frozen. */
  migrationRunning: boolean;
}

/**
 * qmp_migrate_set_capabilities: overlays `changes` (a later entry for the
 * same capability wins), checks the whole set, and returns it; on any
 * refusal nothing changes.
 *
 * @throws QmpError (GenericError)
 */
export function applyCapabilities(
  current: MigrationCapabilities,
  changes: ReadonlyArray<MigrationCapabilityStatus>,
  ctx: SetCapabilitiesContext,
): MigrationCapabilities {
  if (ctx.migrationRunning) throw genericError(migrationActive);
  const next = { ...current };
  for (const { capability, state } of changes) next[capability] = state;
  checkCapabilities(next, { ...ctx, current });
  return Object.freeze(next);
}

/** query-migrate-capabilities: every capability, in QAPI order. */
export function queryCapabilities(caps: MigrationCapabilities): MigrationCapabilityStatus[] {
  return MIGRATION_CAPABILITIES.map((capability) => ({ capability, state: caps[capability] }));
}

/** The QMP arguments of migrate-set-capabilities. */
export const MIGRATE_SET_CAPABILITIES_ARGS = qapi.object({
  capabilities: qapi.array(qapi.object({ capability: qapi.enumOf(MIGRATION_CAPABILITIES), state: qapi.bool })),
});

export function isMigrationCapability(name: string): name is MigrationCapability {
  return (MIGRATION_CAPABILITIES as readonly string[]).includes(name);
}

/**
 * A `--cap` flag: `multifd` or `multifd=on` turns it on, `multifd=off` off.
 *
 * @throws StartupFlagError with a one-line message
 */
export function parseCapFlag(text: string): MigrationCapabilityStatus {
  const { name, value } = splitFlag(text);
  if (!isMigrationCapability(name)) throw new StartupFlagError(`--cap ${text}: unknown capability '${name}'`);
  if (value === undefined) return { capability: name, state: true };
  const state = parseFlagBool(value);
  if (state === null) throw new StartupFlagError(`--cap ${text}: '${value}' is not on or off`);
  return { capability: name, state };
}
