/**
 * `livemig migrate`: virsh migrate's options where livemig has what they
 * need (migrate-options.ts), QEMU's capabilities and parameters as they are
 * (--cap, --param). The progress bar (cli-progress) is imported only when
 * this command runs: every `livemig run` loads this file through the CLI's
 * entry point.
 */
import type { Command } from 'commander';
import { parseQmpAddress } from '../protocols/qmp/address.js';
import { QmpClient } from '../protocols/qmp/client.js';
import { encodeJson } from '../protocols/qmp/json-encode.js';
import { capOption, capsAndParams, livemigCommand, paramOption, parseEach } from './cli-options.js';
import { addVirshLikeOptions, virshLikePlan, type VirshLikeValues } from './migrate-options.js';
import { formatPrediction, measureAndPredict, PREDICT_CALC_TIME_MS } from './convergence-report.js';
import { orchestrateMigration, type MigrationPlan } from './orchestrate.js';

interface MigrateValues extends VirshLikeValues {
  from: string;
  to: string;
  uri: string;
  json?: boolean;
  predict: boolean;
}

export function migrateCommand(): Command {
  const command = livemigCommand('migrate', 'livemig migrate')
    .summary('migrate a guest from one running instance to another')
    .description(`Migrates the guest of one running instance to another, as an orchestrator
would (libvirt's virsh migrate): capabilities and parameters on both,
migrate-incoming on the destination (unless it already listens), migrate on
the source, a progress bar while it runs (on stderr), and a summary at the
end. virsh's options map to QMP as libvirt maps them; --cap and --param set
anything else on both sides, after them.`)
    .requiredOption('--from <QMP_ADDR>', "the source's monitor (unix:PATH or tcp:HOST:PORT)")
    .requiredOption('--to <QMP_ADDR>', "the destination's monitor")
    .requiredOption('--uri <URI>', 'migration URI: tcp:HOST:PORT (port 0: any), unix:PATH, file:PATH[,offset=N], exec:CMD, fd:N');
  return addVirshLikeOptions(command)
    .addOption(capOption('a capability to set on both sides'))
    .addOption(paramOption('a parameter to set on both sides'))
    .option('--json', 'no progress bar, and the summary as one JSON object on stdout')
    .option('--no-predict', "no convergence prediction before the migration (it measures the guest's dirty rate for 0.5 s first)")
    .addHelpText('after', `
Ctrl-C cancels the migration (migrate_cancel), as virsh's does.
Exit status: 0 when the migration completed (or, with x-colo, went to colo), 1 when it failed, 2 on bad or refused options.`)
    .action(async (values: MigrateValues, command: Command) => {
      parseEach(command, parseQmpAddress, [values.from, values.to]);
      let virshLike;
      try {
        virshLike = virshLikePlan(values);
      } catch (err) {
        return command.error((err as Error).message);
      }
      const { caps, params } = capsAndParams(command);
      const plan: MigrationPlan = { ...virshLike, uri: values.uri, caps: [...virshLike.caps, ...caps], params: [...virshLike.params, ...params] };
      process.exitCode = await migrate(values, plan);
    });
}

/** Resolves with the exit status: 0 when the migration completed or went to colo, 1 when it failed. */
async function migrate(values: MigrateValues, plan: MigrationPlan): Promise<number> {
  const { progressBar, summarize, summaryJson } = await import('./migration-report.js');
  const fail = (message: string) => {
    console.error(`livemig migrate: ${message}`);
    if (values.json) console.log(encodeJson({ status: 'error', error: message }));
    return 1;
  };
  let src: QmpClient;
  let dst: QmpClient;
  try {
    src = await QmpClient.connect(values.from);
  } catch (err) {
    return fail(`the source: ${(err as Error).message}`);
  }
  try {
    dst = await QmpClient.connect(values.to);
  } catch (err) {
    await src.close();
    return fail(`the destination: ${(err as Error).message}`);
  }
  // As virsh's job watch: the first Ctrl-C cancels the migration, which then ends as usual.
  const cancel = () => {
    src.execute('migrate_cancel').catch((err: Error) => console.error(`livemig migrate: migrate_cancel: ${err.message}`));
  };
  process.once('SIGINT', cancel);
  let bar: ReturnType<typeof progressBar> | undefined;
  try {
    const guest = await src.execute<{ blocks: { size: number }[]; workload: { kind: string } }>('__org.livemig_query-guest');
    const total = guest.blocks.reduce((n, b) => n + b.size, 0);
    // With --json stdout holds the summary alone: the prediction goes with the messages.
    const say = values.json ? console.error : console.log;
    const predicted: MigrationPlan = values.predict ? { ...plan, beforeMigrate: () => predict(src, say) } : plan;
    // The bar appears with the first sample, once the migration has started.
    const outcome = await orchestrateMigration(src, dst, predicted, (p) => {
      if (values.json) return;
      bar ??= progressBar(total);
      bar.update(p);
    });
    bar?.stop();
    bar = undefined;
    let digests;
    // Only an idle guest holds still long enough for its digests to agree.
    if (outcome.source.status === 'completed' && guest.workload.kind === 'idle') {
      const [s] = await src.execute<{ sha256: string }[]>('__org.livemig_query-digest');
      const [d] = await dst.execute<{ sha256: string }[]>('__org.livemig_query-digest');
      digests = { source: s!.sha256, destination: d!.sha256 };
    }
    console.log(values.json ? encodeJson(summaryJson(outcome, digests)) : summarize(outcome, digests));
    return outcome.source.status === 'completed' || outcome.source.status === 'colo' ? 0 : 1;
  } catch (err) {
    // The bar's timer would keep the process alive.
    bar?.stop();
    const message = (err as Error).message;
    const hint = values.tls && /TLS credentials/.test(message)
      ? ` (--tls uses credentials each instance already has: --object tls-creds-x509,id=${values.tlsCreds ?? 'tls0'},dir=DIR,endpoint=client|server on livemig run, or object-add; --tls-creds ID names them)`
      : '';
    return fail(message + hint);
  } finally {
    process.off('SIGINT', cancel);
    await src.close();
    await dst.close();
  }
}

/** Prints the convergence prediction; one that cannot be made is said, and the migration goes ahead. */
async function predict(src: QmpClient, say: (line: string) => void): Promise<void> {
  try {
    say(formatPrediction(await measureAndPredict(src, { calcTimeMs: PREDICT_CALC_TIME_MS })));
  } catch (err) {
    console.error(`livemig migrate: no convergence prediction: ${(err as Error).message}`);
  }
}
