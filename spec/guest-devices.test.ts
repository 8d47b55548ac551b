import { expect } from 'chai';
import { Guest, defaultAb } from '../actors/guest/guest.js';
import { DeviceRegistry, DeviceStateError, type SavedSection } from '../actors/guest/devices.js';

const MiB = 1 << 20;

function codeOf(fn: () => void): string {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(DeviceStateError);
    return (err as DeviceStateError).code;
  }
  throw new Error('expected a DeviceStateError');
}

describe('guest: device state', function () {
  const guests: Guest[] = [];
  afterEach(async () => {
    await Promise.all(guests.splice(0).map((g) => g.destroy()));
  });

  it('round-trips a section and rejects bad input with clear errors', () => {
    let value: unknown;
    const devices = new DeviceRegistry();
    devices.register({ name: 'timer', instance: 0, version: 2, save: () => ({ ticks: 41, on: true }), load: (s) => { value = s; } });
    const [saved] = devices.saveAll();
    devices.load(saved!);
    expect(value).to.deep.equal({ ticks: 41, on: true });

    expect(codeOf(() => devices.load({ ...saved!, name: 'rtc' }))).to.equal('UNKNOWN_SECTION');
    expect(codeOf(() => devices.load({ ...saved!, instance: 3 }))).to.equal('UNKNOWN_SECTION');
    expect(codeOf(() => devices.load({ ...saved!, version: 3 }))).to.equal('BAD_VERSION');
    expect(() => devices.load({ ...saved!, version: 3 })).to.throw("savevm: unsupported version 3 for 'timer' v2");
    expect(codeOf(() => devices.load({ ...saved!, state: Uint8Array.of(0xc1) }))).to.equal('MALFORMED_STATE');
    expect(codeOf(() => devices.load({ ...saved!, state: Uint8Array.of(0x92, 0x01) }))).to.equal('MALFORMED_STATE');
  });

  it('lists a non-migratable device as a blocker', () => {
    const devices = new DeviceRegistry();
    devices.register({ name: 'passthrough', instance: 0, version: 1, save: () => null, load: () => {}, nonMigratable: "non-migratable device: passthrough" });
    expect(devices.blockers()).to.deep.equal(['non-migratable device: passthrough']);
  });

  it('moves vCPU state between guests: the workload continues where it stopped', async () => {
    const src = await Guest.create({ ram: 8 * MiB, smp: 2, workload: defaultAb(8 * MiB), runState: 'running' });
    const dst = await Guest.create({ ram: 8 * MiB, smp: 2, workload: { kind: 'idle' }, runState: 'inmigrate' });
    guests.push(src, dst);
    await new Promise((r) => setTimeout(r, 30));
    await src.stop('finish-migrate');
    const saved = src.devices.saveAll();
    expect(saved.map((s) => `${s.name}/${s.instance}`)).to.deep.equal(['cpu/0', 'cpu/1', 'nic/0', 'globalstate/0']);
    for (const s of saved) dst.devices.load(s);
    expect(dst.workload).to.deep.equal(src.workload);
    expect(dst.registers(0)).to.deep.equal(src.registers(0));
    expect(dst.registers(1)).to.deep.equal(src.registers(1));
    expect(dst.incomingRunState).to.equal('running');
  });

  it('refuses vCPU state for another workload when the destination named its own', async () => {
    const src = await Guest.create({ ram: 8 * MiB, smp: 1, workload: defaultAb(8 * MiB), runState: 'prelaunch' });
    const dst = await Guest.create({
      ram: 8 * MiB, smp: 1, workload: { kind: 'random', rate: 10, start: 0, workingSet: MiB, seed: 1 },
      workloadExplicit: true, runState: 'inmigrate',
    });
    guests.push(src, dst);
    const [cpu] = src.devices.saveAll() as [SavedSection];
    expect(() => dst.devices.load(cpu)).to.throw(/runs workload 'ab,1048576,8388608' but this guest was started with --workload 'random/);
    const bad = { ...cpu, state: new DeviceRegistry().saveAll()[0]?.state ?? Uint8Array.of(0xc0) };
    expect(codeOf(() => dst.devices.load(bad))).to.equal('LOAD_REFUSED');
  });
});
