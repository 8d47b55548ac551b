/**
 * Drives a migration between two instances the way an orchestrator drives
 * two QEMUs: capabilities and parameters on both sides, migrate-incoming on
 * the destination, migrate on the source, then follow it to the end.
 */
import type { QmpClient } from '../protocols/qmp/client.js';
import type { MigrationCapabilityStatus } from '../actors/options/capabilities.js';
import type { MigrateSetParameters } from '../actors/options/parameters.js';

export interface MigrationPlan {
  uri: string;
  caps: MigrationCapabilityStatus[];
  params: MigrateSetParameters[];
}

/** One sample of the source's query-migrate while it runs. */
export interface MigrationProgress {
  status: string;
  ram?: Record<string, number>;
  'total-time'?: number;
}

export interface MigrationOutcome {
  source: Record<string, unknown>;
  destination: Record<string, unknown>;
  /** The URI the source actually used (a tcp port 0 resolved to the bound port). */
  uri: string;
}

/** Where a migration stops moving: over, or (x-colo) checkpointing from now on. */
const FINAL = ['completed', 'failed', 'cancelled', 'colo'];
/** The source's statuses after which the destination has the guest. */
const THROUGH = ['completed', 'colo'];

export async function orchestrateMigration(
  src: QmpClient,
  dst: QmpClient,
  plan: MigrationPlan,
  onProgress: (p: MigrationProgress) => void = () => {},
): Promise<MigrationOutcome> {
  const caps = [{ capability: 'events', state: true }, ...plan.caps];
  await dst.execute('migrate-set-capabilities', { capabilities: caps });
  await src.execute('migrate-set-capabilities', { capabilities: caps });
  for (const params of plan.params) {
    await dst.execute('migrate-set-parameters', params);
    await src.execute('migrate-set-parameters', params);
  }
  let incoming = await dst.execute<Record<string, unknown>>('query-migrate');
  if (incoming.status === undefined) {
    await dst.execute('migrate-incoming', { uri: plan.uri });
    incoming = await dst.execute<Record<string, unknown>>('query-migrate');
  }
  const uri = resolveUri(plan.uri, incoming['socket-address']);
  await src.execute('migrate', { uri });
  let source: Record<string, unknown>;
  for (;;) {
    source = await src.execute<Record<string, unknown>>('query-migrate');
    onProgress(source as unknown as MigrationProgress);
    if (FINAL.includes(source.status as string)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  // The destination finishes loading just after the source completes.
  let destination: Record<string, unknown> = {};
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    destination = await dst.execute<Record<string, unknown>>('query-migrate').catch(() => ({ status: 'failed' }));
    if (FINAL.includes(destination.status as string) || !THROUGH.includes(source.status as string)) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return { source, destination, uri };
}

/** A tcp URI with port 0 (or a wildcard host) becomes the address the destination really listens on. */
function resolveUri(uri: string, socketAddress: unknown): string {
  const m = /^tcp:(.*):(\d+)$/.exec(uri);
  const bound = Array.isArray(socketAddress) ? (socketAddress[0] as { type?: string; host?: string; port?: string }) : undefined;
  if (!m || bound?.type !== 'inet') return uri;
  let host = m[1]!;
  if (host === '' || host === '0.0.0.0' || host === '[::]') host = '127.0.0.1';
  return `tcp:${host}:${m[2] === '0' ? bound.port : m[2]}`;
}
