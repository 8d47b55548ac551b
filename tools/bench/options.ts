import { parseArgs } from 'node:util';
import { parseSafeSize } from '../../protocols/size.js';

export const BENCH_HELP = `Usage: npm run bench -- [options]

Measures livemig migrations (scenarios after QEMU's guestperf) next to the
machine's loopback limit (plain Node.js) and real QEMU, in one run, and
writes a table, results.json and report.html.

  --size SIZE        guest RAM of the main scenarios (K, M, G suffixes)   [1G; 32M with --quick]
  --repeat N         runs per scenario; medians are reported              [3; 1 with --quick]
  --scenario NAME    only scenarios whose name contains NAME (repeatable);
                     their references are measured too
  --no-qemu          skip real QEMU (and its installation)
  --quick            small sizes, one run, a few scenarios (the smoke test)
  --out DIR          where results.json and report.html go                [bench-results]
  -h, --help         this text`;

export interface BenchOptions {
  size: number;
  repeat: number;
  filters: string[];
  qemu: boolean;
  quick: boolean;
  out: string;
}

export class BenchUsageError extends Error {
  readonly code = 'BENCH_USAGE';
}

export function parseBenchOptions(argv: string[]): BenchOptions | 'help' {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        size: { type: 'string' },
        repeat: { type: 'string' },
        scenario: { type: 'string', multiple: true, default: [] },
        'no-qemu': { type: 'boolean', default: false },
        quick: { type: 'boolean', default: false },
        out: { type: 'string', default: 'bench-results' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (err) {
    throw new BenchUsageError((err as Error).message.split('\n')[0]);
  }
  if (values.help) return 'help';
  let size: number;
  try {
    size = parseSafeSize(values.size ?? (values.quick ? '32M' : '1G'));
  } catch (err) {
    throw new BenchUsageError(`--size: ${(err as Error).message}`);
  }
  if (size < 1 << 20 || size % (1 << 20) !== 0) throw new BenchUsageError('--size: must be a whole number of MiB, at least 1M');
  const repeat = Number(values.repeat ?? (values.quick ? 1 : 3));
  if (!Number.isInteger(repeat) || repeat < 1 || repeat > 100) throw new BenchUsageError(`--repeat: expected a whole number from 1 to 100, got '${values.repeat}'`);
  return { size, repeat, filters: values.scenario, qemu: !values['no-qemu'], quick: values.quick, out: values.out };
}
