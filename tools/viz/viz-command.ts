/**
 * `livemig viz`. The server and Graphviz are imported only when this command
 * runs: every `livemig run` loads this file through the CLI's entry point.
 */
import { basename } from 'node:path';
import type { Command } from 'commander';
import { parseQmpAddress } from '../../protocols/qmp/address.js';
import { livemigCommand, parseEach, wholeNumber } from '../cli-options.js';

interface VizValues {
  source?: string;
  destination?: string;
  port: number;
  interval: number;
  export?: string;
  replay?: string;
}

/** `livemig viz`: serve until SIGINT/SIGTERM, or export and exit. */
export function vizCommand(): Command {
  return livemigCommand('viz', 'livemig viz')
    .summary('serve the statechart visualizer (or --export the charts)')
    .description(`Serves the migration visualizer on http://127.0.0.1:PORT/: both statecharts
with the current status of each side, the transitions taken, live charts of
throughput, remaining bytes and dirty rate per pass, and the messages
between the instances' actors. Without instances the page explores the
machines (the return path's too): send an event, see where it leads or why
it is refused.`)
    .option('--source <QMP_ADDR>', 'follow the source instance (unix:PATH or tcp:HOST:PORT)')
    .option('--destination <QMP_ADDR>', 'follow the destination instance')
    .option('--port <N>', 'port on 127.0.0.1 (0: any free port)', wholeNumber(0, 65535), 7070)
    .option('--interval <MS>', 'query-migrate period', wholeNumber(10), 200)
    .option('--export <DIR>', 'write source, destination and return-path .{svg,dot,mmd} to DIR and exit')
    .option('--replay <FILE>', 'serve a trace the page saved ("Save trace") instead of following instances, to scrub through it')
    .addHelpText('after', `
Status transitions carry exact times when the instances have the 'events'
capability on; otherwise they are seen by polling.`)
    .action(async (values: VizValues, command: Command) => {
      parseEach(command, parseQmpAddress, [values.source, values.destination].filter((a) => a !== undefined));
      if (values.replay !== undefined && (values.source !== undefined || values.destination !== undefined)) {
        command.error('--replay serves a saved trace: it follows no instance, so it takes no --source or --destination');
      }
      await viz(values, command);
    });
}

async function viz(values: VizValues, command: Command): Promise<void> {
  if (values.export !== undefined) {
    const { exportCharts } = await import('./export.js');
    for (const path of await exportCharts(values.export)) console.log(path);
    return;
  }
  const { startVizServer } = await import('./server.js');
  let replay;
  if (values.replay !== undefined) {
    const { readTraceFile, TraceFileError } = await import('./trace-file.js');
    try {
      replay = { trace: await readTraceFile(values.replay), name: basename(values.replay) };
    } catch (err) {
      if (err instanceof TraceFileError) command.error(err.message);
      throw err;
    }
  }
  const server = await startVizServer({
    port: values.port,
    pollMs: values.interval,
    ...(replay === undefined ? {} : { replay }),
    ...(values.source === undefined ? {} : { source: values.source }),
    ...(values.destination === undefined ? {} : { destination: values.destination }),
  });
  console.log(`livemig viz: serving ${server.url}`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await server.close();
}
