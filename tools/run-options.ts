import { Option, type Command } from 'commander';
import { TARGET_PAGE_SIZE } from '../actors/guest/constants.js';
import { defaultAb, GUEST_FILLS, type GuestFill } from '../actors/guest/guest.js';
import { parseDeviceTiming } from '../actors/guest/device-timing.js';
import { WORKLOAD_KINDS, type WorkloadKind, type WorkloadSpec } from '../actors/guest/workloads/index.js';
import type { InstanceConfig } from '../actors/instance/instance.js';
import { isLoopbackMetrics, parseMetricsAddress } from '../actors/metrics/metrics-address.js';
import { netOutAddress } from '../actors/net/net-link.js';
import { parseObjectFlag } from '../actors/objects/object-flag.js';
import { formatQmpAddress, isLocalOnly, parseMonitorListen } from '../protocols/qmp/address.js';
import { parseSafeSize } from '../protocols/size.js';
import { parseMigrationUri } from '../protocols/transport/uri.js';
import { capOption, capsAndParams, paramOption, parseEach, repeatable, size, sizeOf, valueParser, wholeNumber } from './cli-options.js';

const MiB = 1 << 20;

/** `livemig run`'s options as commander parses them. */
export interface RunValues {
  ram: number;
  smp: number;
  block?: { name: string; size: number }[];
  workload: WorkloadKind;
  abStart?: number;
  abEnd?: number;
  dirtyRate: number;
  workingSet?: number;
  randomStart: number;
  seed: number;
  fill?: GuestFill;
  uuid?: string;
  paused?: true;
  incoming?: string;
  qmp?: string[];
  netOut?: string;
  coloDigests?: true;
  qmpRemotePlaintext?: true;
  object?: string[];
  nonmigratableDevice?: string[];
  failoverPrimary?: string[];
  switchoverAckDevice?: string[];
  onlyMigratable?: true;
  faultInjection?: true;
  metrics?: string;
  metricsRemote?: true;
}

const ramBlock = valueParser((spec) => {
  const [name, text] = spec.split('=');
  if (!name || !text || name === 'pc.ram') throw new Error('expected NAME=SIZE with a name other than pc.ram');
  return { name, size: parseSafeSize(text) };
});

const uuid = valueParser((text) => {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(text)) throw new Error('not a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)');
  return text.toLowerCase();
});

/** Adds `livemig run`'s options to `command`, in the groups its help shows. */
export function withRunOptions(command: Command): Command {
  return command
    .optionsGroup('Guest:')
    .addOption(new Option('--ram <SIZE>', 'size of pc.ram (K, M, G, T suffixes)').argParser(sizeOf(TARGET_PAGE_SIZE, `${TARGET_PAGE_SIZE} bytes`)).default(256 * MiB, '256M'))
    .option('--smp <N>', 'number of vCPUs (worker threads)', wholeNumber(1, 255), 1)
    .option('--block <NAME=SIZE>', 'another RAM block, e.g. vga.vram=16M (repeatable)', repeatable(ramBlock))
    .addOption(new Option('--workload <KIND>', 'what the vCPUs run').choices(WORKLOAD_KINDS).default('idle'))
    .option('--ab-start <SIZE>', 'ab: first byte of the range it increments (default: 1M)', size)
    .option('--ab-end <SIZE>', 'ab: end of the range, clamped to --ram (default: 100M)', size)
    .option('--dirty-rate <N>', 'random: pages dirtied per second (whole guest)', wholeNumber(0, 100_000_000), 10_000)
    .option('--working-set <SIZE>', 'random: size of the range it dirties (default: 64M, at most --ram)', size)
    .option('--random-start <SIZE>', 'random: start of that range', size, 0)
    .option('--seed <N>', 'random: PRNG seed', wholeNumber(0, 0xffffffff), 1)
    .addOption(new Option('--fill <KIND>', "fill pc.ram at start (for benchmarks): random bytes, or pages that compress like a real guest's").choices(GUEST_FILLS))
    .option('--uuid <UUID>', "the guest's identity (QEMU's -uuid)", uuid)
    .option('-S, --paused', 'start with the guest stopped (run state prelaunch)')
    .optionsGroup('Migration:')
    .option('--incoming <URI|defer>', 'be a destination: listen on URI now, or wait for migrate-incoming')
    .addOption(capOption('set a migration capability at start'))
    .addOption(paramOption('set a migration parameter at start'))
    .option('--object <SPEC>', "a TLS credentials or authorisation object, as QEMU's -object (keyval or JSON; repeatable)", repeatable(String))
    .option('--nonmigratable-device <ID>', 'a device that cannot be migrated (a migration blocker while it is there; repeatable)', repeatable(String))
    .option('--failover-primary <ID[:MS|never]>', "a passthrough device paired with the guest's NIC: a migration waits (wait-unplug) until the guest unplugs it, which takes it MS (default 100) or never (repeatable)", repeatable(String))
    .option('--switchover-ack-device <ID[:MS|never]>', 'a device that holds the switchover of a migration into this instance (switchover-ack) until ready, MS (default 100) after the stream starts or never by itself (repeatable)', repeatable(String))
    .option('--only-migratable', "refuse any device that would block migration (QEMU's --only-migratable)")
    .option('--fault-injection', 'accept __org.livemig_kill-multifd-thread, which kills a multifd channel\'s thread (a test aid for fault campaigns)')
    .option('--colo-digests', "COLO: work out each checkpoint's RAM digest on both sides (a test aid; it lengthens every checkpoint)")
    .optionsGroup('Network:')
    .option('--net-out <ADDR>', "where the guest's output packets go: a net-out peer on unix:PATH or tcp:HOST:PORT (default: nowhere)")
    .optionsGroup('Monitor:')
    .option('--qmp <ADDR>', 'QMP monitor on unix:PATH or tcp:HOST:PORT, with ,tls-creds=ID[,tls-authz=ID] for TLS (repeatable; at least one); tcp beyond loopback only with TLS, unless…', repeatable(String))
    .option('--qmp-remote-plaintext', 'also let --qmp listen beyond loopback, in plain text and with no authentication (anyone who reaches it drives the guest)')
    .optionsGroup('Metrics:')
    .option('--metrics <HOST:PORT>', 'serve Prometheus metrics of the migrations at http://HOST:PORT/metrics; on loopback only, unless…')
    .option('--metrics-remote', 'also let --metrics listen beyond loopback, with no authentication (anyone who reaches it reads the migration figures)')
    .addHelpText('after', '\nLogs are JSON lines on stderr (LIVEMIG_LOG=debug|info|warn sets the level).');
}

/** The instance `command`'s options describe; a mistake across options is reported as commander reports its own. */
export function instanceConfig(command: Command): InstanceConfig {
  const values = command.opts<RunValues>();
  const fail: (message: string) => never = (message) => command.error(message);
  if (!values.qmp) fail('at least one --qmp unix:PATH or --qmp tcp:HOST:PORT is needed to drive the instance');
  const monitors = parseEach(command, parseMonitorListen, values.qmp);
  const remote = monitors.filter((m) => m.tlsCreds === undefined && !isLocalOnly(m.address)).map((m) => formatQmpAddress(m.address));
  if (remote.length > 0 && !values.qmpRemotePlaintext) {
    fail(
      `--qmp ${remote[0]} would let anyone who reaches this host drive the guest and read its memory, in plain text: ` +
        'give it TLS credentials (--object tls-creds-x509,id=ID,dir=DIR,endpoint=server and --qmp ADDR,tls-creds=ID[,tls-authz=ID]), ' +
        'listen on a unix socket or on loopback, or pass --qmp-remote-plaintext to accept that',
    );
  }
  if (values.incoming !== undefined && values.incoming !== 'defer') {
    parseEach(command, (uri) => parseMigrationUri(uri, { direction: 'incoming' }), [values.incoming]);
  }
  if (values.netOut !== undefined) parseEach(command, netOutAddress, [values.netOut]);
  if (values.metrics !== undefined) {
    const [at] = parseEach(command, parseMetricsAddress, [values.metrics]);
    if (!isLoopbackMetrics(at!) && !values.metricsRemote) {
      fail(
        `--metrics ${values.metrics} would let anyone who reaches this host read the migration figures (status, progress, rates, timings, why one failed), with no authentication: ` +
          'listen on loopback (127.0.0.1:PORT or [::1]:PORT) and let a local agent forward them, or pass --metrics-remote to accept that',
      );
    }
  }
  return {
    guest: {
      ram: values.ram,
      smp: values.smp,
      extraBlocks: values.block ?? [],
      workload: workload(values, fail),
      workloadExplicit: command.getOptionValueSource('workload') === 'cli',
      ...(values.fill ? { fill: values.fill } : {}),
    },
    ...(values.uuid !== undefined ? { uuid: values.uuid } : {}),
    paused: values.paused ?? false,
    ...(values.incoming !== undefined ? { incoming: values.incoming } : {}),
    qmp: values.qmp,
    ...(values.netOut !== undefined ? { netOut: values.netOut } : {}),
    ...(values.coloDigests ? { coloDigests: true } : {}),
    ...(values.object ? { objects: parseEach(command, parseObjectFlag, values.object) } : {}),
    ...(values.nonmigratableDevice ? { nonMigratableDevices: values.nonmigratableDevice } : {}),
    ...(values.failoverPrimary ? { failoverPrimaries: parseEach(command, parseDeviceTiming, values.failoverPrimary) } : {}),
    ...(values.switchoverAckDevice ? { switchoverAckDevices: parseEach(command, parseDeviceTiming, values.switchoverAckDevice) } : {}),
    ...(values.onlyMigratable ? { onlyMigratable: true } : {}),
    ...(values.faultInjection ? { faultInjection: true } : {}),
    ...(values.metrics !== undefined ? { metrics: values.metrics } : {}),
    ...capsAndParams(command),
  };
}

function workload(values: RunValues, fail: (message: string) => never): WorkloadSpec {
  const { ram } = values;
  switch (values.workload) {
    case 'idle':
      return { kind: 'idle' };
    case 'ab': {
      const defaults = defaultAb(ram) as { start: number; end: number };
      const start = values.abStart ?? defaults.start;
      const end = Math.min(values.abEnd ?? defaults.end, ram);
      if (start >= end) fail(`--ab-start must be below --ab-end (and the RAM size): ${start} >= ${end}`);
      return { kind: 'ab', start, end };
    }
    case 'random': {
      const start = values.randomStart;
      const workingSet = values.workingSet ?? Math.min(64 * MiB, ram - start);
      if (start + workingSet > ram) fail('--random-start + --working-set must fit in --ram');
      return { kind: 'random', rate: values.dirtyRate, start, workingSet, seed: values.seed };
    }
  }
}
