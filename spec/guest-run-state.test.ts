import { expect } from 'chai';
import { Guest, defaultAb } from '../actors/guest/guest.js';
import { RunStateError, canTransition } from '../actors/guest/run-state.js';

const MiB = 1 << 20;

describe('guest: vCPUs and run states', function () {
  let guest: Guest | undefined;
  afterEach(async () => {
    await guest?.destroy();
    guest = undefined;
  });

  it('stop leaves no write in flight, and cont resumes the workload', async () => {
    guest = await Guest.create({ ram: 16 * MiB, smp: 3, workload: defaultAb(16 * MiB), runState: 'running' });
    const events: string[] = [];
    guest.on('stop', () => events.push('STOP'));
    guest.on('resume', () => events.push('RESUME'));
    await new Promise((r) => setTimeout(r, 50));
    await guest.stop();
    expect(guest.runState).to.equal('paused');
    const ram = guest.blocks[0]!;
    ram.dirty.fill(false);
    const before = (await guest.digest())[0]!.sha256;
    const regs = [0, 1, 2].map((v) => guest!.registers(v)[0]);
    await new Promise((r) => setTimeout(r, 100));
    expect((await guest.digest())[0]!.sha256, 'memory unchanged while stopped').to.equal(before);
    expect(ram.dirty.count(), 'no page dirtied while stopped').to.equal(0);
    expect([0, 1, 2].map((v) => guest!.registers(v)[0])).to.deep.equal(regs);
    expect(guest.checkAb().ok).to.equal(true);
    guest.start();
    await new Promise((r) => setTimeout(r, 50));
    await guest.stop();
    expect((await guest.digest())[0]!.sha256, 'the workload ran on after cont').to.not.equal(before);
    expect(guest.checkAb().ok).to.equal(true);
    expect(events).to.deep.equal(['STOP', 'RESUME', 'STOP']);
  });

  it('stops and starts many times without a write slipping through', async () => {
    guest = await Guest.create({ ram: 8 * MiB, smp: 2, workload: defaultAb(8 * MiB), runState: 'running' });
    for (let i = 0; i < 30; i++) {
      await guest.stop();
      expect(guest.checkAb().ok, `ab check after stop ${i}`).to.equal(true);
      guest.start();
    }
  });

  it('starts in prelaunch with -S and in inmigrate as a destination', async () => {
    guest = await Guest.create({ ram: 4 * MiB, smp: 1, workload: { kind: 'idle' }, runState: 'prelaunch' });
    expect(guest.runState).to.equal('prelaunch');
    guest.start();
    expect(guest.runState).to.equal('running');
    await guest.destroy();
    guest = await Guest.create({ ram: 4 * MiB, smp: 1, workload: { kind: 'idle' }, runState: 'inmigrate' });
    expect(guest.running).to.equal(false);
    guest.setRunState('paused');
    expect(guest.runState).to.equal('paused');
  });

  it('allows only valid run-state transitions', async () => {
    expect(canTransition('running', 'finish-migrate')).to.equal(true);
    expect(canTransition('finish-migrate', 'postmigrate')).to.equal(true);
    expect(canTransition('postmigrate', 'running')).to.equal(true);
    expect(canTransition('prelaunch', 'postmigrate')).to.equal(false);
    expect(canTransition('save-vm', 'paused')).to.equal(false);
    guest = await Guest.create({ ram: 4 * MiB, smp: 1, workload: { kind: 'idle' }, runState: 'prelaunch' });
    expect(() => guest!.setRunState('postmigrate')).to.throw(RunStateError, "invalid runstate transition: 'prelaunch' -> 'postmigrate'");
    expect(guest.runState).to.equal('prelaunch');
  });

  it('throttle and dirty limit slow the vCPUs down', async () => {
    const workload = { kind: 'random' as const, rate: 1_000_000, start: 0, workingSet: 4 * MiB, seed: 1 };
    guest = await Guest.create({ ram: 4 * MiB, smp: 1, workload, runState: 'running' });
    guest.setDirtyLimit(2000);
    const t0 = performance.now();
    const w0 = guest.registers(0)[1]!;
    await new Promise((r) => setTimeout(r, 500));
    await guest.stop();
    const seconds = (performance.now() - t0) / 1000;
    const written = guest.registers(0)[1]! - w0;
    // An upper bound only: capped vCPUs can be slower, never faster.
    expect(written).to.be.at.most(2000 * seconds + 400);
    expect(written).to.be.greaterThan(0);
    guest.setThrottle(50);
    expect(guest.throttle).to.equal(50);
    expect(() => guest!.setThrottle(100)).to.throw(RangeError);
  });
});
