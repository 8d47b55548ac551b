/**
 * `npm run bench` runs: the --quick --no-qemu bench on a 32 MiB guest
 * measures the loopback limit and the quick livemig scenarios (one of them
 * postcopy, on a 128 MiB guest), and writes a results.json with the fields
 * the report promises, and an HTML report.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LIVEMIG, REPO_ROOT } from '../tools/instance-process.js';
import type { BenchResults, ScenarioResult } from '../tools/bench/results.js';

function runBench(args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', LIVEMIG, 'bench', ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    child.once('exit', (code) => resolve({ code, output }));
  });
}

describe('bench smoke (npm run bench -- --quick --no-qemu)', function () {
  this.timeout(150_000);
  let out: string;
  let results: BenchResults;
  let code: number | null;
  let output: string;
  const scenario = (name: string) => results.scenarios.find((s) => s.name === name) as ScenarioResult;

  before(async () => {
    out = mkdtempSync(join(tmpdir(), 'livemig-bench-smoke-'));
    ({ code, output } = await runBench(['--quick', '--no-qemu', '--out', out]));
    results = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as BenchResults;
  });
  after(() => rmSync(out, { recursive: true, force: true }));

  it('runs the quick set and its loopback references, without QEMU', () => {
    expect(results.scenarios.map((s) => s.name), output).to.deep.equal(['loopback-1', 'loopback-2', 'precopy', 'precopy-zero', 'ab', 'multifd2', 'postcopy-preempt']);
    expect(results.options).to.include({ quick: true, qemu: false, repeat: 1, size: 32 << 20 });
    expect(results.machine.qemu).to.equal(null);
  });

  it('measures the loopback limit with every byte verified, on 1 and 2 connections', () => {
    for (const name of ['loopback-1', 'loopback-2']) {
      const s = scenario(name);
      expect(s.status, s.note).to.equal('ok');
      expect(s.runs.map((r) => r.verified)).to.deep.equal([true]);
      expect(s.runs[0]!.ramBytes).to.equal(32 << 20);
      expect(s.median!.guestGBps).to.be.greaterThan(0);
    }
  });

  it('reports every figure of a livemig precopy run, its series and its ratio to the limit', () => {
    const s = scenario('precopy');
    expect(s.status, s.note).to.equal('ok');
    expect(Object.keys(s.median!).sort()).to.deep.equal([
      'destinationCpuSeconds', 'destinationPeakRssBytes', 'dirtySyncCount', 'downtimeMs', 'guestGBps', 'pagesPerSecond',
      'setupTimeMs', 'sourceCpuSeconds', 'sourcePeakRssBytes', 'totalTimeMs', 'wireBytes', 'wireGBps',
    ]);
    const run = s.runs[0]!;
    expect(run.verified).to.equal(true);
    expect(run.ramBytes).to.equal(32 << 20);
    expect(run.wireBytes).to.be.at.least(run.normalPages! * 4096);
    expect(run.dirtySyncCount).to.be.at.least(1);
    // Peak RSS holds at least the guest's RAM on both sides.
    expect(run.source.peakRssBytes).to.be.at.least(32 << 20);
    expect(run.destination.peakRssBytes).to.be.at.least(32 << 20);
    const last = run.series.at(-1)!;
    expect([last.status, last.remaining, last.t]).to.deep.equal(['completed', 0, run.totalTimeMs]);
    expect(s.vsLimit?.reference).to.equal('loopback-1');
    // One round: one pair, its ratio the ratio.
    expect(s.vsLimit?.pairs?.ratios).to.deep.equal([{ round: 0, value: s.vsLimit!.value, flagged: false }]);
    expect(output).to.match(/^livemig precopy \(guest GB\/s, median of the rounds' pairs\): [\d.]+× loopback-1 \(1 pair\)$/m);
    // Drift needs two rounds.
    expect(results.drift).to.equal(undefined);
    expect(s.vsQemu).to.equal(undefined);
  });

  it('moves never-touched RAM without sending its pages', () => {
    const s = scenario('precopy-zero');
    expect(s.status, s.note).to.equal('ok');
    expect(s.runs[0]!.verified).to.equal(true);
    expect(s.runs[0]!.zeroPages).to.equal(8192);
    expect(s.runs[0]!.wireBytes).to.be.below(1 << 20);
  });

  it('reports multifd as measured, failed with a reason, or not available with a reason', () => {
    const s = scenario('multifd2');
    expect(['ok', 'failed', 'not-available']).to.include(s.status);
    if (s.status !== 'ok') expect(s.note).to.be.a('string').and.not.equal('');
  });

  it('switches a dirtying guest to postcopy after the first pass, reports the switch and the faults, and checks the running destination', () => {
    const s = scenario('postcopy-preempt');
    expect(s.status, s.note).to.equal('ok');
    expect(s.config.postcopy).to.deep.include({ preempt: true, maxBandwidth: 128 << 20, maxPostcopyBandwidth: 0 });
    const run = s.runs[0]!;
    // The ab check on the destination, stopped after it ran the guest on.
    expect(run.verified).to.equal(true);
    expect(run.ramBytes).to.equal(128 << 20);
    // Precopy held to 128 MiB/s never converges: the switch comes after the second dirty sync.
    expect(run.dirtySyncCount).to.be.at.least(2);
    const pc = run.postcopy!;
    expect(pc.switchoverToCompleteMs).to.be.greaterThan(0).and.below(run.totalTimeMs);
    expect(pc.stopToResumeMs).to.be.a('number');
    expect(pc.stopToRunMs).to.be.a('number');
    // The guest dirties 99 MiB at every pass: most of it is still to send at the switch.
    expect(pc.postcopyBytes).to.be.greaterThan(32 << 20);
    expect(pc.requests).to.be.at.least(0);
    const f = pc.faultLatencyUs!;
    expect(f.count).to.be.at.least(0);
    expect(f.p50).to.be.at.most(f.p99);
    expect(f.p99).to.be.at.most(f.max);
    expect(pc.blocktimeMs).to.be.a('number');
    expect(Object.keys(s.median!.postcopy!).sort()).to.deep.equal([
      'blocktimeMs', 'faultCount', 'faultMaxUs', 'faultP50Us', 'faultP99Us', 'postcopyBytes', 'requests',
      'stopToResumeMs', 'stopToRunMs', 'switchoverToCompleteMs',
    ]);
    // No QEMU in this run: no ratio.
    expect(s.postcopyVsQemu).to.equal(undefined);
    expect(output).to.match(/^Postcopy:\n.*fault p99 µs/m);
  });

  it('exits 1 exactly when a scenario failed, and writes the HTML report with its plots', () => {
    expect(code, output).to.equal(results.scenarios.some((s) => s.status === 'failed') ? 1 : 0);
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    expect(html).to.contain('<svg').and.contain('livemig precopy').and.contain('<h2>Postcopy</h2>');
    expect(existsSync(join(out, 'results.json'))).to.equal(true);
  });
});
