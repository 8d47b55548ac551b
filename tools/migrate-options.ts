/**
 * `livemig migrate`'s virsh-like options and what they become, as libvirt's
 * qemu_migration_params.c turns `virsh migrate` flags into QMP: the
 * capabilities and parameters for each side, and what the orchestrator does
 * while the migration runs (stop the source first, switch to postcopy, act
 * at a timeout). An option that needs a feature livemig has not built is
 * refused here, before any monitor is touched, naming what is missing; so is
 * a combination libvirt refuses, in libvirt's sense.
 */
import { Option, type Command } from 'commander';
import { CAPABILITY_SUPPORT, type MigrationCapability, type MigrationCapabilityStatus } from '../actors/options/capabilities.js';
import type { MigrateSetParameters } from '../actors/options/parameters.js';
import { wholeNumber } from './cli-options.js';
import type { MigrationPlan } from './orchestrate.js';

const MiB = 1024 * 1024;

/** virsh's --comp-methods: libvirt's four, xbzrle and mt as capabilities, zlib and zstd as multifd compression. */
const COMP_METHODS = ['xbzrle', 'mt', 'zlib', 'zstd'] as const;

/** The capability each non-multifd method turns on (libvirt: on both sides), and what it is. */
const METHOD_CAPABILITY = {
  xbzrle: { capability: 'xbzrle', what: 'XOR-delta encoding of pages sent again' },
  mt: { capability: 'compress', what: 'multithreaded page compression' },
} as const;
const MULTIFD_COMPRESSION_HINT = 'multifd compression is: --parallel --compressed --comp-methods zlib|zstd';

/** Whether livemig has built `capability` (CAPABILITY_SUPPORT: an option that needs a refused one is refused until it is). */
function built(capability: MigrationCapability): boolean {
  return CAPABILITY_SUPPORT[capability] !== 'refused';
}

/** For --help: what is refused for now. */
function notBuilt(capability: MigrationCapability): string {
  return built(capability) ? '' : ' (refused: not built yet)';
}

export interface VirshLikeValues {
  live?: boolean;
  suspend?: boolean;
  postcopy?: boolean;
  postcopyAfterPrecopy?: boolean;
  postcopyBandwidth?: number;
  autoConverge?: boolean;
  compressed?: boolean;
  compMethods?: string;
  compZlibLevel?: number;
  compZstdLevel?: number;
  parallel?: boolean;
  parallelConnections?: number;
  tls?: boolean;
  tlsCreds?: string;
  tlsDestination?: string;
  bandwidth?: number;
  timeout?: number;
  timeoutSuspend?: boolean;
  timeoutPostcopy?: boolean;
  abortOnError?: boolean;
}

/** The options, in the order `livemig migrate --help` lists them. */
export function addVirshLikeOptions(command: Command): Command {
  return command
    .option('--live', 'live migration: the guest runs on while its memory is copied (the default)')
    .option('--no-live', 'not live, as virsh migrate without --live: stop the guest first, run it on the destination once moved')
    .option('--suspend', 'leave the guest paused on the destination (its autostart turned off before the migration)')
    .option('--postcopy', 'postcopy-ram on both sides; the switch is --postcopy-after-precopy, --timeout-postcopy or your migrate-start-postcopy')
    .option('--postcopy-after-precopy', 'migrate-start-postcopy once the first pass is through (dirty-sync-count 2)')
    .addOption(new Option('--postcopy-bandwidth <MiB/s>', 'max-postcopy-bandwidth on the source').argParser(wholeNumber(1, 8 * 1024 ** 3)))
    .option('--auto-converge', built('auto-converge') ? 'auto-converge on the source' : 'auto-converge (refused: not built in livemig yet)')
    .option('--compressed', `compress pages: with --parallel, --comp-methods zlib|zstd (multifd-compression); without, xbzrle${notBuilt('xbzrle')}`)
    .option('--comp-methods <LIST>', `compression methods, comma-separated: zlib or zstd (multifd), xbzrle${notBuilt('xbzrle')}, mt${notBuilt('compress')}`)
    .addOption(new Option('--comp-zlib-level <N>', 'multifd-zlib-level').argParser(wholeNumber(0, 9)))
    .addOption(new Option('--comp-zstd-level <N>', 'multifd-zstd-level').argParser(wholeNumber(0, 20)))
    .option('--parallel', 'multifd on both sides')
    .addOption(new Option('--parallel-connections <N>', 'multifd-channels on both sides').argParser(wholeNumber(1, 255)))
    .option('--tls', "TLS on every connection: tls-creds on both sides, naming credentials objects the instances already have (livemig run --object)")
    .option('--tls-creds <ID>', "the id of those objects on both instances (default: tls0)")
    .option('--tls-destination <HOST>', "tls-hostname on the source: the name the destination's certificate must carry")
    .addOption(new Option('--bandwidth <MiB/s>', 'max-bandwidth on the source').argParser(wholeNumber(1, 8 * 1024 ** 3)))
    .addOption(new Option('--timeout <SECONDS>', 'if still in precopy after this long, suspend the guest (or --timeout-postcopy)').argParser(wholeNumber(1)))
    .option('--timeout-suspend', 'at --timeout, stop the guest on the source so the migration completes (the default action)')
    .option('--timeout-postcopy', 'at --timeout, migrate-start-postcopy (needs --postcopy)')
    .option('--abort-on-error', 'accepted, no effect: livemig guests have no disks whose I/O errors could pause them');
}

/** What the options add to a plan, or the one-line reason they are refused. */
export type VirshLikePlan = Omit<MigrationPlan, 'uri' | 'caps' | 'params'> & {
  caps: MigrationCapabilityStatus[];
  params: MigrateSetParameters[];
};

/**
 * The plan the options make: capabilities and parameters for both sides
 * (postcopy-ram, multifd, multifd-channels, multifd-compression and its
 * level, tls-creds; xbzrle and compress once built), the source's own
 * (max-bandwidth, max-postcopy-bandwidth, tls-hostname; auto-converge once
 * built), and what to do while it runs.
 *
 * @throws Error with the one-line reason an option or combination is refused
 */
export function virshLikePlan(v: VirshLikeValues): VirshLikePlan {
  const live = v.live !== false;
  const refuse = (why: string): never => {
    throw new Error(why);
  };
  // Not built: refused first, whatever else is wrong.
  if (v.autoConverge && !built('auto-converge')) {
    refuse('--auto-converge is not supported by livemig yet: it needs the auto-converge capability (throttling the vCPUs until precopy converges), ' +
      'which is not built; --postcopy-after-precopy, or --timeout with --timeout-suspend, makes a busy guest\'s migration finish instead');
  }
  const methods = v.compMethods === undefined ? [] : v.compMethods.split(',').map((m) => m.trim());
  for (const m of methods) {
    if (!(COMP_METHODS as readonly string[]).includes(m)) refuse(`--comp-methods: unknown compression method '${m}' (expected ${COMP_METHODS.join(', ')})`);
  }
  // libvirt: --compressed with no method is xbzrle, unless parallel (then it is an error, below).
  if (v.compressed && methods.length === 0 && !v.parallel) {
    if (!built('xbzrle')) {
      refuse(`--compressed without --comp-methods is xbzrle, which is not supported by livemig yet: it needs the xbzrle capability (${METHOD_CAPABILITY.xbzrle.what}), ` +
        `which is not built; ${MULTIFD_COMPRESSION_HINT}`);
    }
    methods.push('xbzrle');
  }
  for (const m of methods) {
    const needed = METHOD_CAPABILITY[m as keyof typeof METHOD_CAPABILITY];
    if (needed && !built(needed.capability)) {
      refuse(`--comp-methods ${m} is not supported by livemig yet: it needs the ${needed.capability} capability (${needed.what}), which is not built; ${MULTIFD_COMPRESSION_HINT}`);
    }
  }
  // Combinations libvirt and virsh refuse.
  const needs = (given: boolean | undefined, option: string, needed: boolean | undefined, neededOption: string) => {
    if (given && !needed) refuse(`${option} needs ${neededOption}`);
  };
  const multifdMethods = methods.filter((m) => m === 'zlib' || m === 'zstd');
  needs(methods.length > 0 && v.compMethods !== undefined, '--comp-methods', v.compressed, '--compressed');
  needs(v.compZlibLevel !== undefined, '--comp-zlib-level', methods.includes('zlib'), '--comp-methods zlib');
  needs(v.compZstdLevel !== undefined, '--comp-zstd-level', methods.includes('zstd'), '--comp-methods zstd');
  if (multifdMethods.length > 0 && !v.parallel) refuse(`--comp-methods ${multifdMethods.join(',')} needs --parallel: it is multifd compression (as libvirt's: only with parallel migration)`);
  if (v.parallel) {
    const other = methods.find((m) => m in METHOD_CAPABILITY);
    if (other) refuse(`--comp-methods ${other} does not go with --parallel (as libvirt's: not with parallel migration); ${MULTIFD_COMPRESSION_HINT}`);
    if (v.compressed && methods.length === 0) refuse('--compressed with --parallel needs --comp-methods zlib or zstd (no compression method selected for parallel migration)');
    if (methods.length > 1) refuse('--comp-methods: only one compression method with --parallel');
  }
  needs(v.parallelConnections !== undefined, '--parallel-connections', v.parallel, '--parallel');
  needs(v.postcopyAfterPrecopy, '--postcopy-after-precopy', v.postcopy, '--postcopy');
  if (v.timeoutSuspend && v.timeoutPostcopy) refuse('--timeout-suspend and --timeout-postcopy exclude each other');
  needs(v.timeoutSuspend, '--timeout-suspend', v.timeout !== undefined, '--timeout');
  needs(v.timeoutPostcopy, '--timeout-postcopy', v.timeout !== undefined, '--timeout');
  needs(v.timeoutPostcopy, '--timeout-postcopy', v.postcopy, '--postcopy');
  needs(v.tlsCreds !== undefined, '--tls-creds', v.tls, '--tls');
  needs(v.tlsDestination !== undefined, '--tls-destination', v.tls, '--tls');
  if (!live && v.postcopy) refuse('--postcopy needs a live migration (not --no-live): postcopy runs the guest on the destination while its memory follows');
  if (!live && v.timeout !== undefined) refuse('--timeout needs a live migration (not --no-live): a stopped guest has no precopy to cut short');

  const caps: MigrationCapabilityStatus[] = [];
  const sourceCaps: MigrationCapabilityStatus[] = [];
  const params: MigrateSetParameters[] = [];
  const sourceParams: MigrateSetParameters[] = [];
  if (v.postcopy) caps.push({ capability: 'postcopy-ram', state: true });
  if (v.autoConverge) sourceCaps.push({ capability: 'auto-converge', state: true });
  for (const m of methods) {
    const needed = METHOD_CAPABILITY[m as keyof typeof METHOD_CAPABILITY];
    if (needed) caps.push({ capability: needed.capability, state: true });
  }
  if (v.parallel) {
    caps.push({ capability: 'multifd', state: true });
    if (v.parallelConnections !== undefined) params.push({ 'multifd-channels': v.parallelConnections });
  }
  if (multifdMethods.length > 0) {
    params.push({ 'multifd-compression': multifdMethods[0] as 'zlib' | 'zstd' });
    if (v.compZlibLevel !== undefined) params.push({ 'multifd-zlib-level': v.compZlibLevel });
    if (v.compZstdLevel !== undefined) params.push({ 'multifd-zstd-level': v.compZstdLevel });
  }
  if (v.tls) {
    params.push({ 'tls-creds': v.tlsCreds ?? 'tls0' });
    if (v.tlsDestination !== undefined) sourceParams.push({ 'tls-hostname': v.tlsDestination });
  }
  if (v.bandwidth !== undefined) sourceParams.push({ 'max-bandwidth': BigInt(v.bandwidth) * BigInt(MiB) });
  if (v.postcopyBandwidth !== undefined) sourceParams.push({ 'max-postcopy-bandwidth': BigInt(v.postcopyBandwidth) * BigInt(MiB) });
  return {
    caps,
    params,
    sourceCaps,
    sourceParams,
    live,
    leaveDestinationPaused: v.suspend === true,
    postcopyAfterPrecopy: v.postcopyAfterPrecopy === true,
    ...(v.timeout !== undefined ? { timeout: { ms: v.timeout * 1000, action: v.timeoutPostcopy ? 'postcopy' as const : 'suspend' as const } } : {}),
  };
}
