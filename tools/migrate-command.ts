import { parseArgs } from 'node:util';
import { QmpClient } from '../protocols/qmp/client.js';
import { parseCapFlag } from '../actors/migration/capabilities.js';
import { parseParamFlag } from '../actors/migration/parameters.js';
import { orchestrateMigration } from './orchestrate.js';
import { progressBar, summarize } from './migration-report.js';

const HELP = `Usage: livemig migrate --from QMP_ADDR --to QMP_ADDR --uri URI [options]

Migrates the guest of one running instance to another, as an orchestrator
would: capabilities and parameters on both, migrate-incoming on the
destination (unless it already listens), migrate on the source, a progress
bar while it runs, and a summary at the end.

  --from QMP_ADDR        the source's monitor (unix:PATH or tcp:HOST:PORT)
  --to QMP_ADDR          the destination's monitor
  --uri URI              migration URI: tcp:HOST:PORT (port 0: any), unix:PATH,
                         file:PATH[,offset=N], exec:CMD, fd:N
  --cap NAME[=on|off]    a capability to set on both sides (repeatable)
  --param NAME=VALUE     a parameter to set on both sides (repeatable)
  -h, --help             this text

Exit status: 0 when the migration completed, 1 when it failed, 2 on bad options.`;

export async function migrateCommand(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      options: {
        from: { type: 'string' },
        to: { type: 'string' },
        uri: { type: 'string' },
        cap: { type: 'string', multiple: true, default: [] },
        param: { type: 'string', multiple: true, default: [] },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (err) {
    console.error(`livemig migrate: ${(err as Error).message.split('\n')[0]}`);
    return 2;
  }
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  let plan;
  try {
    if (!values.from || !values.to || !values.uri) throw new Error('--from, --to and --uri are all required');
    plan = { uri: values.uri, caps: values.cap.map(parseCapFlag), params: values.param.map(parseParamFlag) };
  } catch (err) {
    console.error(`livemig migrate: ${(err as Error).message}`);
    return 2;
  }
  const src = await QmpClient.connect(values.from);
  const dst = await QmpClient.connect(values.to);
  try {
    const guest = await src.execute<{ blocks: { size: number }[]; workload: { kind: string } }>('__org.livemig_query-guest');
    const total = guest.blocks.reduce((n, b) => n + b.size, 0);
    const bar = progressBar(total);
    const outcome = await orchestrateMigration(src, dst, plan, (p) => bar.update(p));
    bar.stop();
    let digests;
    // Only an idle guest holds still long enough for its digests to agree.
    if (outcome.source.status === 'completed' && guest.workload.kind === 'idle') {
      const [s] = await src.execute<{ sha256: string }[]>('__org.livemig_query-digest');
      const [d] = await dst.execute<{ sha256: string }[]>('__org.livemig_query-digest');
      digests = { source: s!.sha256, destination: d!.sha256 };
    }
    console.log(summarize(outcome, digests));
    return outcome.source.status === 'completed' ? 0 : 1;
  } catch (err) {
    console.error(`livemig migrate: ${(err as Error).message}`);
    return 1;
  } finally {
    await src.close();
    await dst.close();
  }
}
