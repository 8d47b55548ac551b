import { join } from 'node:path';
import { NetSink } from '../net-sink.js';
import { spawnInstance } from '../instance-process.js';
import { quitAll } from './livemig-migration.js';
import { readWork, pagesBetween } from './guest-throughput.js';
const dir = '/tmp/colox';
const t0 = Date.now();
const sink = await NetSink.listen(`unix:${dir}/net.sock`);
const guest = ['--ram', '256M', '--smp', '1', '--workload', 'ab', '--ab-start', '1M', '--ab-end', '100M'];
const colo = ['--cap', 'x-colo', '--cap', 'events', '--net-out', `unix:${dir}/net.sock`];
const [p, s] = await Promise.all([
  spawnInstance([...guest, ...colo, '--param', 'x-checkpoint-delay=200'], { socket: join(dir, 'p.qmp'), name: 'primary' }),
  spawnInstance([...guest, ...colo, '--incoming', 'tcp:127.0.0.1:0'], { socket: join(dir, 's.qmp'), name: 'secondary' }),
]);
console.log('started', Date.now() - t0);
const w0 = await readWork(p.qmp); await new Promise(r => setTimeout(r, 1000)); const w1 = await readWork(p.qmp);
console.log('before', pagesBetween(w0, w1) / ((w1.at - w0.at) / 1000));
const info = await s.qmp.execute<any>('query-migrate');
const port = info['socket-address'][0].port;
await p.qmp.execute('migrate', { uri: `tcp:127.0.0.1:${port}` });
for (;;) { const st = (await p.qmp.execute<any>('query-migrate')).status; if (Date.now() % 20 < 3) console.log(st); if (st === 'colo' || st === 'failed') { console.log(st, Date.now() - t0); break; } await new Promise(r => setTimeout(r, 50)); }
for (const delay of [200, 1000, 5000]) {
  await p.qmp.execute('migrate-set-parameters', { 'x-checkpoint-delay': delay });
  const a = await readWork(p.qmp);
  let last = 0;
  const end = Date.now() + Math.max(3000, delay * 3);
  while (Date.now() < end) {
    const q = await p.qmp.execute<any>('__org.livemig_query-colo');
    if (q['last-checkpoint'] && q['last-checkpoint'].id !== last) { last = q['last-checkpoint'].id; console.log(delay, JSON.stringify(q['last-checkpoint']), JSON.stringify(q.compare), JSON.stringify(q['net-out'])); }
    await new Promise(r => setTimeout(r, 50));
  }
  const b = await readWork(p.qmp);
  console.log('during', delay, pagesBetween(a, b) / ((b.at - a.at) / 1000));
}
await p.qmp.execute('x-colo-lost-heartbeat');
for (;;) { const st = (await p.qmp.execute<any>('query-migrate')).status; if (st !== 'colo') { console.log(st); break; } await new Promise(r => setTimeout(r, 50)); }
console.log(await p.qmp.execute('query-colo-status'), await s.qmp.execute('query-colo-status'), (await s.qmp.execute<any>('query-migrate')).status);
await quitAll([p, s]);
await sink.close();
console.log('violations', sink.violations, sink.received.length, Date.now() - t0);
