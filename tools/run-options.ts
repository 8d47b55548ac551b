import { parseArgs } from 'node:util';
import { TARGET_PAGE_SIZE } from '../actors/guest/constants.js';
import { defaultAb } from '../actors/guest/guest.js';
import type { WorkloadSpec } from '../actors/guest/workloads/index.js';
import type { InstanceConfig } from '../actors/instance/instance.js';
import { parseCapFlag } from '../actors/migration/capabilities.js';
import { parseParamFlag } from '../actors/migration/parameters.js';
import { parseSafeSize } from '../protocols/size.js';
import { parseQmpAddress } from '../protocols/qmp/address.js';
import { parseMigrationUri } from '../protocols/transport/uri.js';

export const RUN_HELP = `Usage: livemig run [options]

Starts one instance: a guest and its migration service, driven over QMP.

Guest
  --ram SIZE              size of pc.ram (K, M, G, T suffixes)            [256M]
  --smp N                 number of vCPUs (worker threads)                [1]
  --block NAME=SIZE       another RAM block, e.g. vga.vram=16M (repeatable)
  --workload KIND         idle | ab | random                              [idle]
  --ab-start SIZE         ab: first byte of the range it increments       [1M]
  --ab-end SIZE           ab: end of the range (clamped to --ram)         [100M]
  --dirty-rate N          random: pages dirtied per second (whole guest)  [10000]
  --working-set SIZE      random: size of the range it dirties            [64M, at most --ram]
  --random-start SIZE     random: start of that range                     [0]
  --seed N                random: PRNG seed                               [1]
  --fill random           fill pc.ram with random bytes at start (for benchmarks)
  --uuid UUID             the guest's identity (QEMU's -uuid)
  -S, --paused            start with the guest stopped (run state prelaunch)

Migration
  --incoming URI|defer    be a destination: listen on URI now, or wait for migrate-incoming
  --cap NAME[=on|off]     set a migration capability at start (repeatable)
  --param NAME=VALUE      set a migration parameter at start (repeatable)

Monitor
  --qmp unix:PATH         QMP monitor on a unix socket (repeatable)
  --qmp tcp:HOST:PORT     QMP monitor on TCP (repeatable)

  -h, --help              this text

Logs are JSON lines on stderr (LIVEMIG_LOG=debug|info|warn sets the level).`;

export class UsageError extends Error {}

/** Parses `livemig run`'s options; every mistake is a one-line UsageError. */
export function parseRunOptions(argv: string[]): InstanceConfig | 'help' {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        ram: { type: 'string', default: '256M' },
        smp: { type: 'string', default: '1' },
        block: { type: 'string', multiple: true, default: [] },
        workload: { type: 'string' },
        'ab-start': { type: 'string' },
        'ab-end': { type: 'string' },
        'dirty-rate': { type: 'string', default: '10000' },
        'working-set': { type: 'string' },
        'random-start': { type: 'string', default: '0' },
        seed: { type: 'string', default: '1' },
        uuid: { type: 'string' },
        fill: { type: 'string' },
        paused: { type: 'boolean', short: 'S', default: false },
        incoming: { type: 'string' },
        cap: { type: 'string', multiple: true, default: [] },
        param: { type: 'string', multiple: true, default: [] },
        qmp: { type: 'string', multiple: true, default: [] },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (err) {
    throw new UsageError((err as Error).message.split('\n')[0]);
  }
  if (values.help) return 'help';
  const size = (flag: string, text: string) => {
    try {
      return parseSafeSize(text);
    } catch (err) {
      throw new UsageError(`--${flag}: ${(err as Error).message}`);
    }
  };
  const integer = (flag: string, text: string, min: number, max: number) => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`--${flag}: expected a whole number from ${min} to ${max}, got '${text}'`);
    return n;
  };
  const flag = <T>(parse: (t: string) => T, text: string): T => {
    try {
      return parse(text);
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  };
  const ram = size('ram', values.ram);
  if (ram === 0 || ram % TARGET_PAGE_SIZE !== 0) throw new UsageError(`--ram: must be a positive multiple of ${TARGET_PAGE_SIZE} bytes`);
  const smp = integer('smp', values.smp, 1, 255);
  const extraBlocks = values.block.map((spec) => {
    const [name, sz] = spec.split('=');
    if (!name || !sz || name === 'pc.ram') throw new UsageError(`--block: expected NAME=SIZE with a name other than pc.ram, got '${spec}'`);
    return { name, size: size('block', sz) };
  });
  const workload = parseWorkload(values, ram, size, integer);
  if (values.fill !== undefined && values.fill !== 'random') throw new UsageError(`--fill: only 'random' is known, got '${values.fill}'`);
  if (values.uuid !== undefined && !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(values.uuid)) {
    throw new UsageError(`--uuid: '${values.uuid}' is not a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)`);
  }
  if (values.qmp.length === 0) throw new UsageError('at least one --qmp unix:PATH or --qmp tcp:HOST:PORT is needed to drive the instance');
  for (const address of values.qmp) flag(parseQmpAddress, address);
  if (values.incoming !== undefined && values.incoming !== 'defer') {
    flag((uri) => parseMigrationUri(uri, { direction: 'incoming' }), values.incoming);
  }
  return {
    guest: { ram, smp, extraBlocks, workload, workloadExplicit: values.workload !== undefined, ...(values.fill ? { fill: 'random' as const } : {}) },
    ...(values.uuid !== undefined ? { uuid: values.uuid.toLowerCase() } : {}),
    paused: values.paused,
    ...(values.incoming !== undefined ? { incoming: values.incoming } : {}),
    qmp: values.qmp,
    caps: values.cap.map((c) => flag(parseCapFlag, c)),
    params: values.param.map((p) => flag(parseParamFlag, p)),
  };
}

function parseWorkload(
  values: Record<string, string | boolean | string[] | undefined>,
  ram: number,
  size: (flag: string, text: string) => number,
  integer: (flag: string, text: string, min: number, max: number) => number,
): WorkloadSpec {
  const kind = (values.workload as string | undefined) ?? 'idle';
  switch (kind) {
    case 'idle':
      return { kind };
    case 'ab': {
      const defaults = defaultAb(ram) as { start: number; end: number };
      const start = values['ab-start'] ? size('ab-start', values['ab-start'] as string) : defaults.start;
      const end = Math.min(values['ab-end'] ? size('ab-end', values['ab-end'] as string) : defaults.end, ram);
      if (start >= end) throw new UsageError(`--ab-start must be below --ab-end (and the RAM size): ${start} >= ${end}`);
      return { kind, start, end };
    }
    case 'random': {
      const start = size('random-start', values['random-start'] as string);
      const workingSet = values['working-set'] ? size('working-set', values['working-set'] as string) : Math.min(64 << 20, ram - start);
      if (start + workingSet > ram) throw new UsageError('--random-start + --working-set must fit in --ram');
      return {
        kind,
        rate: integer('dirty-rate', values['dirty-rate'] as string, 0, 100_000_000),
        start,
        workingSet,
        seed: integer('seed', values.seed as string, 0, 0xffffffff),
      };
    }
    default:
      throw new UsageError(`--workload: unknown workload '${kind}' (idle, ab or random)`);
  }
}
