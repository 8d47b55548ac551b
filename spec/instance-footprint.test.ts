/**
 * What a bundled `livemig run` carries besides its guest: its worker threads
 * (vCPUs, which also pre-fault a destination's RAM, digest, multifd
 * channels) start from bundles built with
 * the program, so the instance never runs esbuild, whose module and service
 * cost ~20 MB of RSS.
 */
import { expect } from 'chai';
import { startInstance, stopAllInstances } from './support/instances.js';
import { channelListenersUp, multifdArgs } from './support/multifd-pair.js';
import { childProcesses, rssBytes } from '../tools/bench/process-usage.js';
import { sleep } from './support/migration-driver.js';

const MiB = 1 << 20;

describe('instance footprint', function () {
  this.timeout(30_000);
  afterEach(stopAllInstances);

  it('a destination starts its vCPU, digest and multifd channel threads without running esbuild', async () => {
    const destination = await startInstance(['--ram', '32M', '--smp', '2', ...multifdArgs({ channels: 4 }), '--incoming', 'defer'], { name: 'dst' });
    await destination.qmp.execute('migrate-incoming', { uri: 'tcp:127.0.0.1:0' });
    await channelListenersUp(destination, 4);
    await destination.qmp.execute('__org.livemig_query-digest');
    expect(childProcesses(destination.process.pid!).map((c) => c.name)).to.deep.equal([]);
  });

  for (const smp of [1, 3]) {
    it(`a destination with ${smp} vCPU${smp > 1 ? 's' : ''} pre-faults all its RAM with them while they are parked: query-guest says so and the RAM is resident`, async () => {
      const ram = 256 * MiB;
      const destination = await startInstance(['--ram', '256M', '--smp', String(smp), '--incoming', 'defer'], { name: 'dst' });
      const deadline = Date.now() + 20_000;
      while (!(await destination.qmp.execute<{ prefaulted: boolean }>('__org.livemig_query-guest')).prefaulted) {
        expect(Date.now(), 'pre-fault did not finish').to.be.below(deadline);
        await sleep(50);
      }
      // Untouched, the guest's RAM would not be resident at all.
      expect(rssBytes(destination.process.pid!)).to.be.above(ram);
    });
  }
});
