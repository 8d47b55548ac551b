/**
 * A COLO pair of real processes for tests: a net-out peer (the outside
 * world the guest talks to), a primary running `ab` and a secondary, both
 * sending their output to that peer, migrated into COLO with a short
 * checkpoint delay. Every COLO_CHECKPOINT and COLO_EXIT event is kept.
 */
import { join } from 'node:path';
import { NetSink } from '../../tools/net-sink.js';
import { FaultProxy } from './fault-proxy.js';
import { startInstance, type TestInstance } from './instances.js';
import { boundTcpUri, EVENTS, waitForMigration } from './migration-driver.js';

const MiB = 1 << 20;
export const COLO_AB_START = MiB;
export const COLO_AB_END = 48 * MiB;

export interface CheckpointEvent {
  checkpoint: number;
  mode: 'primary' | 'secondary';
  pages?: number;
  digest?: string;
}

export interface ColoSide {
  instance: TestInstance;
  checkpoints: CheckpointEvent[];
  exits: { mode: string; reason: string }[];
  migration: string[];
}

export interface ColoPair {
  sink: NetSink;
  /** With `proxy`: the fault proxy the COLO link goes through. */
  proxy?: FaultProxy;
  /** Where the secondary listened for the first migration (its end of the COLO link). */
  uri: string;
  primary: ColoSide;
  secondary: ColoSide;
}

function watch(instance: TestInstance): ColoSide {
  const side: ColoSide = { instance, checkpoints: [], exits: [], migration: [] };
  instance.qmp.events.on('event', (e: { event: string; data?: Record<string, unknown> }) => {
    if (e.event === '__org.livemig_COLO_CHECKPOINT') side.checkpoints.push(e.data as unknown as CheckpointEvent);
    else if (e.event === 'COLO_EXIT') side.exits.push(e.data as { mode: string; reason: string });
    else if (e.event === 'MIGRATION') side.migration.push(String(e.data!.status));
  });
  return side;
}

/** Starts the peer and both instances, migrates, and returns once both sides are in colo. */
export async function startColoPair(dir: string, options: { delayMs?: number; smp?: number; digests?: boolean; proxy?: boolean } = {}): Promise<ColoPair> {
  const sink = await NetSink.listen(`unix:${join(dir, 'net.sock')}`);
  const guest = ['--ram', '64M', '--smp', String(options.smp ?? 1), '--workload', 'ab', '--ab-start', String(COLO_AB_START), '--ab-end', String(COLO_AB_END)];
  const colo = ['--cap', 'x-colo', '--net-out', `unix:${join(dir, 'net.sock')}`, ...EVENTS, ...(options.digests === false ? [] : ['--colo-digests'])];
  // max-bandwidth: ab rewrites 47 MiB without pause, more than the default 128 MiB/s converges on in 300 ms.
  const primary = watch(await startInstance([...guest, ...colo, '--param', 'max-bandwidth=10G', '--param', `x-checkpoint-delay=${options.delayMs ?? 300}`], { name: 'primary' }));
  const secondary = watch(await startInstance([...guest, ...colo, '--incoming', 'tcp:127.0.0.1:0'], { name: 'secondary' }));
  const uri = await boundTcpUri(secondary.instance.qmp);
  const proxy = options.proxy ? await FaultProxy.start({ host: '127.0.0.1', port: Number(uri.split(':').at(-1)) }) : undefined;
  await primary.instance.qmp.execute('migrate', { uri: proxy?.uri ?? uri });
  await waitForMigration(primary.instance.qmp, ['colo', 'failed', 'completed'], 60_000);
  await waitForMigration(secondary.instance.qmp, ['colo', 'failed', 'completed'], 60_000);
  return { sink, uri, primary, secondary, ...(proxy ? { proxy } : {}) };
}

/** Waits until the side has seen `count` checkpoint events. */
export async function checkpointsSeen(side: ColoSide, count: number, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (side.checkpoints.length < count) {
    if (Date.now() > deadline) throw new Error(`${side.instance.name} saw ${side.checkpoints.length} checkpoints, waited for ${count}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
