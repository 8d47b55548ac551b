import type { Command } from 'commander';
import { livemigCommand } from './cli-options.js';

/**
 * `livemig qmp-compare`: drives QEMU and livemig through the same QMP
 * sequences and shows where their answers differ (tools/qmp-compare/).
 * QEMU's answers come from a live QEMU (installed from Debian if missing,
 * as the benchmark does) or from a recording made earlier.
 */
export function qmpCompareCommand(): Command {
  return livemigCommand('qmp-compare', 'livemig qmp-compare')
    .summary("compare livemig's QMP answers with QEMU's")
    .description('Runs the same command sequences against QEMU and livemig; prints every difference, known (QEMU 8.2 vs 7.2, not built, deliberate) or not. Exits 1 on an unexplained or stale one.')
    .option('--qemu-recording <FILE>', "QEMU's answers recorded earlier (--save-qemu), instead of running QEMU")
    .option('--save-qemu <FILE>', "write QEMU's answers, recorded now, to FILE")
    .action(async ({ qemuRecording, saveQemu }: { qemuRecording?: string; saveQemu?: string }) => {
      const { readFileSync, writeFileSync } = await import('node:fs');
      const { record } = await import('./qmp-compare/record.js');
      const { livemigPair, qemuPair } = await import('./qmp-compare/engines.js');
      const { compare, describeRows } = await import('./qmp-compare/compare.js');
      let qemu;
      if (qemuRecording) qemu = JSON.parse(readFileSync(qemuRecording, 'utf8'));
      else {
        const { ensureQemu } = await import('./bench/qemu-setup.js');
        qemu = await record(await ensureQemu((line) => console.error(line)), qemuPair);
        if (saveQemu) writeFileSync(saveQemu, `${JSON.stringify(qemu, null, 1)}\n`);
      }
      const rows = compare(qemu, await record('livemig', livemigPair));
      console.log(describeRows(rows));
      process.exitCode = rows.some((r) => r.verdict === 'differs' || r.verdict === 'stale') ? 1 : 0;
    });
}
