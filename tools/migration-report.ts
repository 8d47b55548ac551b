import cliProgress from 'cli-progress';
import type { MigrationOutcome, MigrationProgress } from './orchestrate.js';

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

/** The closing summary a person reads after a migration. */
export function summarize(outcome: MigrationOutcome, digests?: { source: string; destination: string }): string {
  const s = outcome.source;
  const ram = (s.ram ?? {}) as Record<string, number>;
  const lines = [`migration ${String(s.status)} over ${outcome.uri}`];
  if (s.status === 'completed') {
    const total = Number(s['total-time']);
    const setup = Number(s['setup-time'] ?? 0);
    lines.push(
      `  total time      ${total} ms (setup ${setup} ms)`,
      `  downtime        ${String(s.downtime)} ms`,
      `  guest RAM       ${(ram.total! / MB).toFixed(0)} MB at ${(ram.total! / GB / (total / 1000)).toFixed(2)} GB/s`,
      `  data moved      ${(ram.transferred! / MB).toFixed(1)} MB on the wire (${(ram.transferred! / GB / (total / 1000)).toFixed(2)} GB/s), ` +
        `${ram.normal} pages with data, ${ram.duplicate} zero pages`,
      `  dirty syncs     ${ram['dirty-sync-count']}`,
      `  destination     ${String(outcome.destination.status)}`,
    );
  } else if (s.status === 'colo') {
    lines.push(
      '  COLO            the destination is the secondary: checkpoints run until x-colo-lost-heartbeat fails over',
      `  destination     ${String(outcome.destination.status)}`,
    );
  } else if (s['error-desc']) {
    lines.push(`  error           ${String(s['error-desc'])}`);
  }
  if (digests) {
    lines.push(digests.source === digests.destination
      ? `  RAM digests     agree (${digests.source.slice(0, 16)}…)`
      : `  RAM digests     differ: source ${digests.source.slice(0, 16)}…, destination ${digests.destination.slice(0, 16)}…`);
  }
  return lines.join('\n');
}
