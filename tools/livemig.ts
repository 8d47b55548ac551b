#!/usr/bin/env -S node --import tsx
/**
 * The livemig command line: `livemig run` starts an instance, `livemig
 * migrate` drives a migration between two of them as an orchestrator would.
 */
import { runCommand } from './run-command.js';
import { migrateCommand } from './migrate-command.js';
import { vizCommand } from './viz/viz-command.js';

const HELP = `Usage: livemig <command> [options]

Commands
  run        start an instance (a guest and its QMP monitor)
  migrate    migrate a guest from one running instance to another
  viz        serve the statechart visualizer (or --export the charts)

livemig <command> --help explains each command's options.`;

const [command, ...rest] = process.argv.slice(2);
switch (command) {
  case 'run':
    await runCommand(rest);
    break;
  case 'migrate':
    process.exitCode = await migrateCommand(rest);
    break;
  case 'viz':
    process.exitCode = await vizCommand(rest);
    break;
  case undefined:
  case '-h':
  case '--help':
    console.log(HELP);
    break;
  default:
    console.error(`livemig: unknown command '${command}' (run, migrate; --help for more)`);
    process.exitCode = 2;
}
