/**
 * The pair of instances one campaign run migrates between: a source running
 * the `ab` guest and a destination waiting for it, the link between them
 * shaped so a fault-free migration takes one to two seconds. Its layout
 * (plan.ts) says what joins them:
 * - `loopback`: a fault proxy on the main channel. With multifd, only the
 *   main channel passes the proxy: the channels connect to the ports the
 *   destination announces on the return path, straight to it, so the
 *   proxy's faults reach the main stream and the return path but not the
 *   pages on the multifd channels.
 * - `netns`: each side in a network namespace of its own, joined by a veth
 *   pair (netns.ts): every channel, multifd's too, crosses the real link.
 * - `file`: the source saves to a file on a small tmpfs (tmpfs.ts); the
 *   destination is the restore side, started with `--incoming defer` and
 *   given the file (`migrate-incoming file:…`) only if the save completed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeTestPki, type TestPki } from '../../tools/pki.js';
import { FaultProxy } from '../support/fault-proxy.js';
import { startInstance, type TestInstance } from '../support/instances.js';
import { boundTcpUri, queryMigrate } from '../support/migration-driver.js';
import { MiB, multifdArgs, steadyHoldings, type ProcessHoldings } from '../support/multifd-pair.js';
import { POSTCOPY, abGuestArgs, postcopyLink, type AbGuest } from '../support/postcopy-pair.js';
import { NETNS_DESTINATION, type NetnsLink } from './netns.js';
import { MULTIFD_CHANNELS, type Layout, type Mode } from './plan.js';
import type { SmallTmpfs } from './tmpfs.js';

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
const MULTIFD = multifdArgs({ channels: MULTIFD_CHANNELS });
/** Every instance of the campaign takes the fault commands (kill-multifd-thread). */
const FAULT_INJECTION = ['--fault-injection'];

const CAPABILITIES: Record<Mode, string[]> = { precopy: [], multifd: MULTIFD, postcopy: POSTCOPY, tls: [] };
const LINK: Record<Mode, string[]> = { precopy: PRECOPY_LINK, multifd: PRECOPY_LINK, postcopy: POSTCOPY_LINK, tls: PRECOPY_LINK };

/**
 * The campaign's x509 credentials for TLS runs, made once: the server
 * certificate names the loopback and the netns destination's address, so
 * the source's check of the host it dialled passes on either layout.
 */
let pki: Promise<TestPki> | undefined;
function campaignPki(): Promise<TestPki> {
  if (pki === undefined) {
    const dir = mkdtempSync(join(tmpdir(), 'lmchaos-pki-'));
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    pki = makeTestPki(dir, ['localhost', '127.0.0.1', NETNS_DESTINATION]);
  }
  return pki;
}

/** Each side's TLS arguments in a TLS run (the destination checks the source's certificate, as QEMU's verify-peer does). */
async function tlsArgs(mode: Mode): Promise<{ source: string[]; destination: string[] }> {
  if (mode !== 'tls') return { source: [], destination: [] };
  const { client, server } = await campaignPki();
  return {
    source: ['--object', `tls-creds-x509,id=tls0,dir=${client},endpoint=client`, '--param', 'tls-creds=tls0'],
    destination: ['--object', `tls-creds-x509,id=tls0,dir=${server},endpoint=server,verify-peer=on`, '--param', 'tls-creds=tls0'],
  };
}

export interface MigrationPair {
  mode: Mode;
  layout: Layout;
  source: TestInstance;
  destination: TestInstance;
  /** Where the source's `migrate` goes. */
  uri: string;
  /** loopback: on the main channel, to the destination's own port. */
  proxy?: FaultProxy;
  /** netns: the namespaces and the veth pair between the two sides. */
  net?: NetnsLink;
  /** file: the target the source saves to (on `tmpfs`), which the destination restores from. */
  file?: { uri: string; mount: string; tmpfs: SmallTmpfs };
  /** What each process held before the migration, to find leaks afterwards. */
  baseline: { source: ProcessHoldings; destination: ProcessHoldings };
}

/** What a layout needs made before the pair starts (and removed by the caller after it). */
export interface LayoutResources {
  net?: NetnsLink;
  tmpfs?: SmallTmpfs;
}

/** Starts both instances and what joins them; `proxies` gets every proxy opened, for the caller to close. */
export async function startPair(mode: Mode, proxies: FaultProxy[], layout: Layout = 'loopback', resources: LayoutResources = {}): Promise<MigrationPair> {
  const tls = await tlsArgs(mode);
  const sourceArgs = [...abGuestArgs(RAM, AB), ...CAPABILITIES[mode], ...LINK[mode], ...tls.source, ...FAULT_INJECTION];
  const destinationArgs = [...abGuestArgs(RAM, AB, false), ...CAPABILITIES[mode], ...tls.destination, ...FAULT_INJECTION];
  let source: TestInstance;
  let destination: TestInstance;
  const extra: Partial<MigrationPair> = {};
  let uri: string;
  switch (layout) {
    case 'loopback': {
      [destination, source] = await Promise.all([
        startInstance([...destinationArgs, '--incoming', 'tcp:127.0.0.1:0'], { name: 'dst' }),
        startInstance(sourceArgs, { name: 'src' }),
      ]);
      extra.proxy = await proxyTo(destination, proxies);
      uri = extra.proxy.uri;
      break;
    }
    case 'netns': {
      const net = need(resources.net, 'a netns link');
      [destination, source] = await Promise.all([
        startInstance([...destinationArgs, '--incoming', `tcp:${net.address.destination}:0`], { name: 'dst', wrap: net.wrap('destination') }),
        startInstance(sourceArgs, { name: 'src', wrap: net.wrap('source') }),
      ]);
      extra.net = net;
      uri = await listeningUri(destination);
      break;
    }
    case 'file': {
      const tmpfs = need(resources.tmpfs, 'a small tmpfs');
      [destination, source] = await Promise.all([
        startInstance([...destinationArgs, '--incoming', 'defer'], { name: 'dst' }),
        startInstance(sourceArgs, { name: 'src' }),
      ]);
      uri = `file:${tmpfs.file}`;
      extra.file = { uri, mount: tmpfs.dir, tmpfs };
      break;
    }
  }
  const [sourceHoldings, destinationHoldings] = await Promise.all([
    steadyHoldings(source.process.pid!),
    steadyHoldings(destination.process.pid!),
  ]);
  return { mode, layout, source, destination, uri, ...extra, baseline: { source: sourceHoldings, destination: destinationHoldings } };
}

function need<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`this layout needs ${what}`);
  return value;
}

/** A fresh proxy to the port the destination listens on now (its incoming or its migrate-recover address). */
export async function proxyTo(destination: TestInstance, proxies: FaultProxy[]): Promise<FaultProxy> {
  const port = Number((await boundTcpUri(destination.qmp)).split(':')[2]);
  const proxy = await FaultProxy.start({ host: '127.0.0.1', port });
  proxies.push(proxy);
  return proxy;
}

/** The tcp: URI the destination says it listens on (host included: in a namespace it is not loopback). */
export async function listeningUri(destination: TestInstance): Promise<string> {
  const address = (await queryMigrate(destination.qmp))['socket-address']?.[0];
  if (address?.type !== 'inet' || !address.host || !address.port) throw new Error(`${destination.name} shows no inet socket-address`);
  return `tcp:${address.host}:${address.port}`;
}
