/**
 * `livemig bench` (what `npm run bench` runs): its options, and an action
 * that imports the bench (index.ts) only when it runs: every `livemig run`
 * loads this file through the CLI's entry point.
 */
import type { Command } from 'commander';
import { livemigCommand, repeatable, sizeOf, wholeNumber } from '../cli-options.js';
import type { BenchOptions } from './index.js';

const MiB = 1 << 20;

interface BenchValues {
  size?: number;
  repeat?: number;
  scenario?: string[];
  qemu: boolean;
  quick?: true;
  out: string;
}

export function benchCommand(): Command {
  return livemigCommand('bench', 'bench')
    .summary('measure migrations next to the loopback limit and real QEMU (npm run bench)')
    .description(`Measures livemig migrations (scenarios after QEMU's guestperf) next to the
machine's loopback limit (plain Node.js) and real QEMU, in one run, and
writes a table, results.json and report.html.`)
    .option('--size <SIZE>', 'guest RAM of the main scenarios, K, M, G suffixes (default: 1G; 32M with --quick)', sizeOf(MiB, '1M'))
    .option('--repeat <N>', 'rounds, each running every scenario once, beside its references; medians are reported (default: 3; 1 with --quick)', wholeNumber(1, 100))
    .option('--scenario <NAME>', 'only scenarios whose name contains NAME (repeatable); their references are measured too', repeatable(String))
    .option('--no-qemu', 'skip real QEMU (and its installation)')
    .option('--quick', 'small sizes, one run, a few scenarios (the smoke test)')
    .option('--out <DIR>', 'where results.json and report.html go', 'bench-results')
    .addHelpText('after', '\nnpm run bench -- [options] runs this command.')
    .action(async (values: BenchValues) => {
      const { runBench } = await import('./index.js');
      process.exitCode = await runBench(benchOptions(values));
    });
}

function benchOptions(values: BenchValues): BenchOptions {
  const quick = values.quick ?? false;
  return {
    size: values.size ?? (quick ? 32 : 1024) * MiB,
    repeat: values.repeat ?? (quick ? 1 : 3),
    filters: values.scenario ?? [],
    qemu: values.qemu,
    quick,
    out: values.out,
  };
}
