/**
 * `livemig viz`. The server and Graphviz are imported only when this command
 * runs: every `livemig run` loads this file through the CLI's entry point.
 */
import { parseArgs } from 'node:util';
import { parseQmpAddress } from '../../protocols/qmp/address.js';

export const VIZ_HELP = `Usage: livemig viz [options]

Serves the migration visualizer on http://127.0.0.1:PORT/: both statecharts
with the current status of each side, the transitions taken, live charts of
throughput, remaining bytes and dirty rate per pass, and the messages
between the instances' actors. Without instances the page explores the
machines: send an event, see where it leads or why it is refused.

  --source QMP_ADDR       follow the source instance (unix:PATH or tcp:HOST:PORT)
  --destination QMP_ADDR  follow the destination instance
  --port N                port on 127.0.0.1 (0: any free port)        [7070]
  --interval MS           query-migrate period                          [200]
  --export DIR            write source.{svg,dot,mmd} and destination.{svg,dot,mmd} to DIR and exit

  -h, --help              this text

Status transitions carry exact times when the instances have the 'events'
capability on; otherwise they are seen by polling.`;

/** `livemig viz`: serve until SIGINT/SIGTERM, or export and exit. Resolves with the exit status. */
export async function vizCommand(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        source: { type: 'string' },
        destination: { type: 'string' },
        port: { type: 'string', default: '7070' },
        interval: { type: 'string', default: '200' },
        export: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
    for (const address of [values.source, values.destination]) if (address !== undefined) parseQmpAddress(address);
  } catch (err) {
    console.error(`livemig viz: ${(err as Error).message.split('\n')[0]}`);
    return 2;
  }
  if (values.help) {
    console.log(VIZ_HELP);
    return 0;
  }
  if (values.export !== undefined) {
    const { exportCharts } = await import('./export.js');
    for (const path of await exportCharts(values.export)) console.log(path);
    return 0;
  }
  const port = Number(values.port);
  const pollMs = Number(values.interval);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`livemig viz: --port: '${values.port}' is not a port number`);
    return 2;
  }
  if (!Number.isInteger(pollMs) || pollMs < 10) {
    console.error(`livemig viz: --interval: '${values.interval}' must be an integer of at least 10 (ms)`);
    return 2;
  }
  const { startVizServer } = await import('./server.js');
  const viz = await startVizServer({
    port,
    pollMs,
    ...(values.source === undefined ? {} : { source: values.source }),
    ...(values.destination === undefined ? {} : { destination: values.destination }),
  });
  console.log(`livemig viz: serving ${viz.url}`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await viz.close();
  return 0;
}
