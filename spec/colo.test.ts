/**
 * COLO with real processes: a primary and a secondary guest running side
 * by side, checkpointed into the secondary, their output compared before
 * it leaves (the net-out peer judges it: no gap, no duplicate, every
 * packet following from the last), and failover either way.
 */
import { expect } from 'chai';
import { startColoPair, checkpointsSeen } from './support/colo-pair.js';
import { stopAllInstances } from './support/instances.js';
import { logTail } from './support/multifd-pair.js';
import { scratchDirPerTest } from './support/scratch-dir.js';

describe('COLO', function () {
  this.timeout(120_000);
  const scratch = scratchDirPerTest('livemig-colo-', stopAllInstances);

  it('checkpoints many times: after each the secondary holds exactly the primary at that checkpoint', async () => {
    const pair = await startColoPair(scratch());
    try {
      expect(pair.primary.migration).to.deep.equal(['setup', 'active', 'colo']);
      expect(pair.secondary.migration.slice(-2)).to.deep.equal(['active', 'colo']);
      await checkpointsSeen(pair.secondary, 8);
      const primary = new Map(pair.primary.checkpoints.map((c) => [c.checkpoint, c.digest]));
      for (const c of pair.secondary.checkpoints) expect(c.digest, `checkpoint ${c.checkpoint}`).to.equal(primary.get(c.checkpoint));
      expect(pair.sink.violations).to.deep.equal([]);
      expect(pair.sink.received.length).to.be.above(0);
      expect(await pair.primary.instance.qmp.execute('query-colo-status')).to.deep.equal({ mode: 'primary', 'last-mode': 'none', reason: 'none' });
      expect(await pair.secondary.instance.qmp.execute('query-colo-status')).to.deep.equal({ mode: 'secondary', 'last-mode': 'none', reason: 'none' });
      console.log(await pair.primary.instance.qmp.execute('__org.livemig_query-colo'));
    } catch (err) {
      console.log(logTail(pair.primary.instance), logTail(pair.secondary.instance));
      throw err;
    } finally {
      await pair.sink.close();
    }
  });
});
