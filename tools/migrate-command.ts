/**
 * `livemig migrate`. The progress bar (cli-progress) is imported only when
 * this command runs: every `livemig run` loads this file through the CLI's
 * entry point.
 */
import type { Command } from 'commander';
import { parseQmpAddress } from '../protocols/qmp/address.js';
import { QmpClient } from '../protocols/qmp/client.js';
import { capOption, capsAndParams, livemigCommand, paramOption, parseEach } from './cli-options.js';
import { orchestrateMigration, type MigrationPlan } from './orchestrate.js';

interface MigrateValues {
  from: string;
  to: string;
  uri: string;
}

export function migrateCommand(): Command {
  return livemigCommand('migrate', 'livemig migrate')
    .summary('migrate a guest from one running instance to another')
    .description(`Migrates the guest of one running instance to another, as an orchestrator
would: capabilities and parameters on both, migrate-incoming on the
destination (unless it already listens), migrate on the source, a progress
bar while it runs, and a summary at the end.`)
    .requiredOption('--from <QMP_ADDR>', "the source's monitor (unix:PATH or tcp:HOST:PORT)")
    .requiredOption('--to <QMP_ADDR>', "the destination's monitor")
    .requiredOption('--uri <URI>', 'migration URI: tcp:HOST:PORT (port 0: any), unix:PATH, file:PATH[,offset=N], exec:CMD, fd:N')
    .addOption(capOption('a capability to set on both sides'))
    .addOption(paramOption('a parameter to set on both sides'))
    .addHelpText('after', '\nExit status: 0 when the migration completed (or, with x-colo, went to colo), 1 when it failed, 2 on bad options.')
    .action(async (values: MigrateValues, command: Command) => {
      parseEach(command, parseQmpAddress, [values.from, values.to]);
      process.exitCode = await migrate(values, { uri: values.uri, ...capsAndParams(command) });
    });
}

/** Resolves with the exit status: 0 when the migration completed or went to colo, 1 when it failed. */
async function migrate(values: MigrateValues, plan: MigrationPlan): Promise<number> {
  const { progressBar, summarize } = await import('./migration-report.js');
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
    return outcome.source.status === 'completed' || outcome.source.status === 'colo' ? 0 : 1;
  } catch (err) {
    console.error(`livemig migrate: ${(err as Error).message}`);
    return 1;
  } finally {
    await src.close();
    await dst.close();
  }
}
