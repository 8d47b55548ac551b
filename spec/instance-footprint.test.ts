/**
 * What a bundled `livemig run` carries besides its guest: its worker threads
 * (vCPUs, pre-fault, digest, multifd channels) start from bundles built with
 * the program, so the instance never runs esbuild, whose module and service
 * cost ~20 MB of RSS.
 */
import { expect } from 'chai';
import { startInstance, stopAllInstances } from './support/instances.js';
import { channelListenersUp, multifdArgs } from './support/multifd-pair.js';
import { childProcesses } from '../tools/bench/process-usage.js';

describe('instance footprint', function () {
  this.timeout(30_000);
  afterEach(stopAllInstances);

  it('a destination starts its vCPU, pre-fault, digest and multifd channel threads without running esbuild', async () => {
    const destination = await startInstance(['--ram', '32M', '--smp', '2', ...multifdArgs({ channels: 4 }), '--incoming', 'defer'], { name: 'dst' });
    await destination.qmp.execute('migrate-incoming', { uri: 'tcp:127.0.0.1:0' });
    await channelListenersUp(destination, 4);
    await destination.qmp.execute('__org.livemig_query-digest');
    expect(childProcesses(destination.process.pid!).map((c) => c.name)).to.deep.equal([]);
  });
});
