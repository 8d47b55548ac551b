#!/usr/bin/env -S node --import tsx
/**
 * The livemig command line: `livemig run` starts an instance, `livemig
 * migrate` drives a migration between two of them as an orchestrator would
 * (virsh migrate's options), `livemig info` shows its figures as virsh
 * domjobinfo does, `livemig viz` shows their statecharts, `livemig analyze` shows what a saved
 * or captured migration stream holds, `livemig bench` (`npm run bench`)
 * measures migrations, `livemig net-sink` plays the outside world a guest's
 * output goes to, `livemig pki` makes credentials to try TLS with,
 * `livemig qmp-compare` holds livemig's QMP answers against QEMU's. Every instance starts through this file (bundled:
 * program-bundle.ts), so the other commands import their heavy parts only
 * when they run.
 */
import { CommanderError } from 'commander';
import { analyzeCommand } from './analyze-command.js';
import { benchCommand } from './bench/options.js';
import { livemigCommand } from './cli-options.js';
import { infoCommand } from './info-command.js';
import { migrateCommand } from './migrate-command.js';
import { netSinkCommand } from './net-sink-command.js';
import { pkiCommand } from './pki-command.js';
import { qmpCompareCommand } from './qmp-compare-command.js';
import { runCommand } from './run-command.js';
import { vizCommand } from './viz/viz-command.js';

const program = livemigCommand('livemig', 'livemig')
  .usage('<command> [options]')
  .description("Live migration of a running guest between instances, modelled on QEMU's migration subsystem.")
  .helpCommand(false)
  .addCommand(runCommand())
  .addCommand(migrateCommand())
  .addCommand(infoCommand())
  .addCommand(vizCommand())
  .addCommand(benchCommand())
  .addCommand(netSinkCommand())
  .addCommand(pkiCommand())
  .addCommand(analyzeCommand())
  .addCommand(qmpCompareCommand())
  .addHelpText('after', "\nlivemig <command> --help explains each command's options.");

// A reader that stops early (`livemig --help | head`) is not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE') throw err;
});

const args = process.argv.slice(2);
try {
  // Without a command, the list of commands (commander would print it as an error).
  if (args.length === 0) program.outputHelp();
  else await program.parseAsync(args, { from: 'user' });
} catch (err) {
  if (!(err instanceof CommanderError)) throw err;
  // Commander has printed the help or the one-line error; a usage error is status 2 (commander's is 1).
  process.exitCode = err.exitCode === 0 ? 0 : 2;
}
