/**
 * The pair of instances one campaign run migrates between: a source running
 * the `ab` guest and a destination waiting for it, the link between them
 * shaped so a fault-free migration takes one to two seconds, and a fault
 * proxy on the main channel. With multifd, only the main channel passes the
 * proxy: the channels connect to the ports the destination announces on the
 * return path, straight to it, so the proxy's faults reach the main stream
 * and the return path but not the pages on the multifd channels.
 */
import { FaultProxy } from '../support/fault-proxy.js';
import { startInstance, type TestInstance } from '../support/instances.js';
import { boundTcpUri } from '../support/migration-driver.js';
import { MiB, multifdArgs, steadyHoldings, type ProcessHoldings } from '../support/multifd-pair.js';
import { POSTCOPY, abGuestArgs, postcopyLink, type AbGuest } from '../support/postcopy-pair.js';
import type { Mode } from './plan.js';

const RAM = '64M';
export const AB: AbGuest = { start: 1 * MiB, end: 25 * MiB, smp: 1 };
/**
 * 24 MB/s moves the ab range's 24 MiB (the only pages ever written) in a
 * second. The incrementer dirties the whole range again during each pass,
 * so with QEMU's default 300 ms downtime limit precopy cannot converge until
 * the orchestrator raises it after the first pass (orchestrator.ts).
 */
const PRECOPY_LINK = ['--param', 'max-bandwidth=24000000'];
/** Precopy cannot end alone (1 ms downtime limit): the orchestrator switches after the first pass. */
const POSTCOPY_LINK = postcopyLink(24_000_000, 48_000_000);
const MULTIFD = multifdArgs({ channels: 2 });

const CAPABILITIES: Record<Mode, string[]> = { precopy: [], multifd: MULTIFD, postcopy: POSTCOPY };
const LINK: Record<Mode, string[]> = { precopy: PRECOPY_LINK, multifd: PRECOPY_LINK, postcopy: POSTCOPY_LINK };

export interface MigrationPair {
  mode: Mode;
  source: TestInstance;
  destination: TestInstance;
  /** On the main channel, to the destination's own port. */
  proxy: FaultProxy;
  /** What each process held before the migration, to find leaks afterwards. */
  baseline: { source: ProcessHoldings; destination: ProcessHoldings };
}

/** Starts both instances and the proxy; `proxies` gets every proxy opened, for the caller to close. */
export async function startPair(mode: Mode, proxies: FaultProxy[]): Promise<MigrationPair> {
  const [destination, source] = await Promise.all([
    startInstance([...abGuestArgs(RAM, AB, false), ...CAPABILITIES[mode], '--incoming', 'tcp:127.0.0.1:0'], { name: 'dst' }),
    startInstance([...abGuestArgs(RAM, AB), ...CAPABILITIES[mode], ...LINK[mode]], { name: 'src' }),
  ]);
  const proxy = await proxyTo(destination, proxies);
  const [sourceHoldings, destinationHoldings] = await Promise.all([
    steadyHoldings(source.process.pid!),
    steadyHoldings(destination.process.pid!),
  ]);
  return { mode, source, destination, proxy, baseline: { source: sourceHoldings, destination: destinationHoldings } };
}

/** A fresh proxy to the port the destination listens on now (its incoming or its migrate-recover address). */
export async function proxyTo(destination: TestInstance, proxies: FaultProxy[]): Promise<FaultProxy> {
  const port = Number((await boundTcpUri(destination.qmp)).split(':')[2]);
  const proxy = await FaultProxy.start({ host: '127.0.0.1', port });
  proxies.push(proxy);
  return proxy;
}
