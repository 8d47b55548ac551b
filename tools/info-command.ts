/**
 * `livemig info`: a migration's figures on one screen, as `virsh
 * domjobinfo` shows a domain's job, read from the instance's query-migrate;
 * `--watch` redraws it once a second until the migration ends.
 */
import type { Command } from 'commander';
import { parseQmpAddress } from '../protocols/qmp/address.js';
import { QmpClient } from '../protocols/qmp/client.js';
import { encodeJson } from '../protocols/qmp/json-encode.js';
import { livemigCommand, parseEach } from './cli-options.js';
import { jobEnded, jobInfo, renderJobInfo } from './job-info.js';

interface InfoValues {
  from: string;
  watch?: boolean;
  json?: boolean;
}

const REFRESH_MS = 1000;

export function infoCommand(): Command {
  return livemigCommand('info', 'livemig info')
    .summary("a migration's figures, as virsh domjobinfo shows them")
    .description(`Shows the migration of one instance as virsh domjobinfo shows a domain's job:
job type, operation, time elapsed, data and memory processed, remaining and
total, bandwidth, dirty rate, page size, iteration (dirty syncs), constant
and normal pages, expected downtime, setup time; read from its query-migrate.
On a destination, what it has received so far.`)
    .requiredOption('--from <QMP_ADDR>', "the instance's monitor (unix:PATH or tcp:HOST:PORT): the source, or a destination")
    .option('--watch', 'redraw the screen once a second until the migration ends (waits for one to start if none has)')
    .option('--json', "one JSON object, libvirt's virDomainGetJobStats field names (with --watch, one line per refresh)")
    .addHelpText('after', '\nExit status: 0, 1 when the monitor cannot be reached or goes away, 2 on bad options.')
    .action(async (values: InfoValues, command: Command) => {
      parseEach(command, parseQmpAddress, [values.from]);
      process.exitCode = await info(values);
    });
}

async function info(values: InfoValues): Promise<number> {
  let qmp: QmpClient;
  try {
    qmp = await QmpClient.connect(values.from);
  } catch (err) {
    console.error(`livemig info: ${(err as Error).message}`);
    return 1;
  }
  // On a terminal the screen is redrawn in place; elsewhere (a log, a pipe) each one follows the last.
  const redraw = process.stdout.isTTY === true;
  let drawnLines = 0;
  try {
    for (;;) {
      const answer = await qmp.execute<Record<string, unknown>>('query-migrate');
      const job = jobInfo(answer);
      if (values.json) {
        process.stdout.write(`${encodeJson(job)}\n`);
      } else {
        const screen = renderJobInfo(job);
        if (drawnLines > 0) process.stdout.write(redraw ? `\x1b[${drawnLines}F\x1b[J` : '\n');
        process.stdout.write(`${screen}\n`);
        drawnLines = screen.split('\n').length;
      }
      if (!values.watch || jobEnded(answer)) return 0;
      await new Promise((r) => setTimeout(r, REFRESH_MS));
    }
  } catch (err) {
    console.error(`livemig info: ${(err as Error).message}`);
    return 1;
  } finally {
    await qmp.close();
  }
}
