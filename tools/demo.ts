/**
 * `npm run demo`: a live migration on the embedded defaults. Starts a source
 * running QEMU's `ab` test workload and a destination, migrates the running
 * guest over loopback TCP, then proves the destination's memory with the
 * `ab` check and shows that the guest runs on there. `npm run demo -- --tls`
 * does the same over TLS, with x509 credentials made for the run (verify-peer
 * on, so each side proves itself to the other).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnInstance, type InstanceProcess } from './instance-process.js';
import { makeTestPki } from './pki.js';
import { progressBar, summarize } from './migration-report.js';
import { orchestrateMigration } from './orchestrate.js';

const RAM = '1G';
const dir = mkdtempSync(join(tmpdir(), 'livemig-demo-'));
const started: InstanceProcess[] = [];
const overTls = process.argv.includes('--tls');

/** Each side's --object and --param flags for TLS: its own credentials as tls0. */
async function tlsFlags(): Promise<{ source: string[]; destination: string[] }> {
  if (!overTls) return { source: [], destination: [] };
  const pki = await makeTestPki(join(dir, 'pki'));
  const side = (creds: string, endpoint: string) => ['--object', `tls-creds-x509,id=tls0,dir=${creds},endpoint=${endpoint}`, '--param', 'tls-creds=tls0'];
  return { source: side(pki.client, 'client'), destination: side(pki.server, 'server') };
}

async function main(): Promise<number> {
  console.log(`livemig demo: a ${RAM} guest running the 'ab' workload (QEMU's migration-test guest), migrated live over ${overTls ? 'TLS (x509, each side checking the other)' : 'TCP'}\n`);
  const tls = await tlsFlags();
  const source = await spawnInstance(['--ram', RAM, '--workload', 'ab', ...tls.source], { socket: join(dir, 'source.qmp'), name: 'source' });
  started.push(source);
  const destination = await spawnInstance(['--ram', RAM, ...tls.destination, '--incoming', 'tcp:127.0.0.1:0'], { socket: join(dir, 'destination.qmp'), name: 'destination' });
  started.push(destination);
  console.log('source and destination are up; migrating…');
  const guest = await source.qmp.execute<{ blocks: { size: number }[] }>('__org.livemig_query-guest');
  const bar = progressBar(guest.blocks.reduce((n, b) => n + b.size, 0));
  // QEMU's default max-bandwidth (128 MiB/s) is far below loopback: lift it.
  const outcome = await orchestrateMigration(source.qmp, destination.qmp, {
    uri: 'tcp:127.0.0.1:0',
    caps: [],
    params: [{ 'max-bandwidth': 10n << 30n }],
  }, (p) => bar.update(p));
  bar.stop();
  console.log(`\n${summarize(outcome)}\n`);
  if (outcome.source.status !== 'completed') return 1;

  const status = await source.qmp.execute<{ status: string }>('query-status');
  console.log(`source guest:      ${status.status}`);
  await destination.qmp.execute('stop');
  const check = await destination.qmp.execute<{ ok: boolean; 'bad-pages': number }>('__org.livemig_check-ab');
  console.log(`destination guest: ab check ${check.ok ? 'passed: every page arrived, none stale' : `FAILED: ${check['bad-pages']} bad pages`}`);
  const [before] = await destination.qmp.execute<{ sha256: string }[]>('__org.livemig_query-digest');
  await destination.qmp.execute('cont');
  await new Promise((r) => setTimeout(r, 200));
  await destination.qmp.execute('stop');
  const [after] = await destination.qmp.execute<{ sha256: string }[]>('__org.livemig_query-digest');
  const again = await destination.qmp.execute<{ ok: boolean }>('__org.livemig_check-ab');
  const runsOn = before!.sha256 !== after!.sha256 && again.ok;
  console.log(`destination guest: ${runsOn ? 'runs on where the source stopped (its memory keeps changing, still consistent)' : 'did NOT run on correctly'}`);
  return check.ok && runsOn ? 0 : 1;
}

try {
  process.exitCode = await main();
} catch (err) {
  console.error(`demo failed: ${(err as Error).message}`);
  process.exitCode = 1;
} finally {
  for (const i of started) {
    await i.qmp.execute('quit').catch(() => {});
    await i.qmp.close().catch(() => {});
  }
  await Promise.all(started.map((i) => i.exited));
  rmSync(dir, { recursive: true, force: true });
}
