import cliProgress from 'cli-progress';
import type { MigrationOutcome, MigrationProgress, OrchestratorAction } from './orchestrate.js';

const MB = 1e6;
const GB = 1e9;

/** A progress bar over query-migrate samples: transferred/remaining, throughput, dirty rate, passes. */
export function progressBar(total: number): { update(p: MigrationProgress): void; stop(): void } {
  const bar = new cliProgress.SingleBar(
    {
      format: ' {bar} {percentage}% | {status} | sent {sent} MB, left {left} MB | {rate} MB/s | dirty {dirty} pages/s | pass {pass}',
      hideCursor: true,
      noTTYOutput: true,
      notTTYSchedule: 1000,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0, { status: 'setup', sent: 0, left: (total / MB).toFixed(0), rate: 0, dirty: 0, pass: 0 });
  return {
    update(p) {
      const ram = p.ram ?? {};
      const remaining = ram.remaining ?? (p.status === 'completed' ? 0 : total);
      bar.update(Math.max(0, total - remaining), {
        status: p.status,
        sent: ((ram.transferred ?? 0) / MB).toFixed(0),
        left: (remaining / MB).toFixed(0),
        rate: (((ram.mbps ?? 0) * 1e6) / 8 / MB).toFixed(0),
        dirty: Math.round(ram['dirty-pages-rate'] ?? 0),
        pass: ram['dirty-sync-count'] ?? 0,
      });
    },
    stop() {
      bar.stop();
    },
  };
}

/** What each orchestrator action was for, in a line. */
const ACTION_TEXT: Record<string, string> = {
  'stop-source/no-live': 'the guest stopped on the source (--no-live)',
  'stop-destination/suspend': "the destination's autostart turned off (--suspend)",
  'migrate-start-postcopy/postcopy-after-precopy': 'switched to postcopy once the first pass was through',
  'migrate-start-postcopy/timeout': 'switched to postcopy at the timeout',
  'stop-source/timeout': 'the guest suspended on the source at the timeout',
  'cont-destination/resume': 'the guest run on the destination',
  'cont-source/failed': 'the guest run again on the source',
};

function actionLine(a: OrchestratorAction): string {
  const what = ACTION_TEXT[`${a.action}/${a.reason}`] ?? `${a.action} (${a.reason})`;
  const when = a['at-ms'] < 0 ? 'before migrate' : `at ${a['at-ms']} ms`;
  return `  livemig         ${what}, ${when}${a.error ? `: refused, ${a.error}` : ''}`;
}

/** The closing summary a person reads after a migration. */
export function summarize(outcome: MigrationOutcome, digests?: { source: string; destination: string }): string {
  const s = outcome.source;
  const ram = (s.ram ?? {}) as Record<string, number>;
  const lines = [`migration ${String(s.status)} over ${outcome.uri}`];
  const destination = `  destination     ${String(outcome.destination.status)}${outcome.runStates.destination ? `, guest ${outcome.runStates.destination}` : ''}`;
  if (s.status === 'completed') {
    const total = Number(s['total-time']);
    const setup = Number(s['setup-time'] ?? 0);
    lines.push(
      `  total time      ${total} ms (setup ${setup} ms)`,
      `  downtime        ${String(s.downtime)} ms`,
      `  guest RAM       ${(ram.total! / MB).toFixed(0)} MB at ${(ram.total! / GB / (total / 1000)).toFixed(2)} GB/s`,
      `  data moved      ${(ram.transferred! / MB).toFixed(1)} MB on the wire (${(ram.transferred! / GB / (total / 1000)).toFixed(2)} GB/s), ` +
        `${ram.normal} pages with data, ${ram.duplicate} zero pages`,
      ...((ram['multifd-bytes'] ?? 0) > 0 ? [`  multifd         ${(ram['multifd-bytes']! / MB).toFixed(1)} MB over the channels`] : []),
      ...((ram['postcopy-bytes'] ?? 0) > 0 ? [`  postcopy        ${(ram['postcopy-bytes']! / MB).toFixed(1)} MB after the switch, ${ram['postcopy-requests']} page requests`] : []),
      `  dirty syncs     ${ram['dirty-sync-count']}`,
      destination,
    );
  } else if (s.status === 'colo') {
    lines.push(
      '  COLO            the destination is the secondary: checkpoints run until x-colo-lost-heartbeat fails over',
      destination,
    );
  } else if (s['error-desc']) {
    lines.push(`  error           ${String(s['error-desc'])}`);
  }
  lines.push(...outcome.actions.map(actionLine));
  if (digests) {
    lines.push(digests.source === digests.destination
      ? `  RAM digests     agree (${digests.source.slice(0, 16)}…)`
      : `  RAM digests     differ: source ${digests.source.slice(0, 16)}…, destination ${digests.destination.slice(0, 16)}…`);
  }
  return lines.join('\n');
}

/**
 * `livemig migrate --json`: the outcome for a program — the status, the URI
 * used, both sides' last query-migrate as QEMU answers it, both guests' run
 * states, what livemig did on the way, and (idle guests) the RAM digests.
 */
export function summaryJson(outcome: MigrationOutcome, digests?: { source: string; destination: string }): Record<string, unknown> {
  return {
    status: outcome.source.status,
    uri: outcome.uri,
    source: outcome.source,
    destination: outcome.destination,
    'run-states': outcome.runStates,
    actions: outcome.actions,
    ...(digests ? { digests } : {}),
  };
}
