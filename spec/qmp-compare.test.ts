/**
 * livemig's QMP answers against QEMU's own (tools/qmp-compare/): the same
 * command sequences, run against real livemig processes, must answer as
 * QEMU 7.2 answered them (spec/fixtures/qemu-7.2-qmp.json, recorded with
 * `livemig qmp-compare --save-qemu`), apart from the listed differences —
 * QEMU 8.2's answers, features not built, deliberate ones — none of which
 * may go stale. The recording is checked against a live QEMU too, installed
 * from Debian as the benchmark installs it; that part is skipped, saying
 * why, only where QEMU cannot be installed.
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { ensureQemu } from '../tools/bench/qemu-setup.js';
import { compare, describeRows } from '../tools/qmp-compare/compare.js';
import { livemigPair, qemuPair } from '../tools/qmp-compare/engines.js';
import { record, type Recording } from '../tools/qmp-compare/record.js';

const RECORDED = new URL('./fixtures/qemu-7.2-qmp.json', import.meta.url);

describe("QMP answers compared with QEMU's", function () {
  this.timeout(120_000);
  const qemu = JSON.parse(readFileSync(RECORDED, 'utf8')) as Recording;

  it('livemig answers every sequence as the recorded QEMU 7.2 did, but for the listed differences, none stale', async () => {
    const rows = compare(qemu, await record('livemig', livemigPair));
    const unexplained = rows.filter((r) => r.verdict === 'differs' || r.verdict === 'stale');
    expect(unexplained, describeRows(rows)).to.deep.equal([]);
    expect(rows.filter((r) => r.verdict === 'same').length, 'most rows agree').to.be.above(50);
  });

  it("the recording is QEMU's own: a live QEMU answers the same now", async function () {
    this.timeout(20 * 60_000);
    let version: string;
    try {
      version = await ensureQemu(() => {});
    } catch (err) {
      // Only a machine where Debian's QEMU cannot be installed skips this, saying why.
      console.log(`      skipped: Debian's QEMU cannot be installed here: ${(err as Error).message}`);
      return this.skip();
    }
    expect(version).to.match(/^QEMU emulator version 7\.2/, 'the recording is of QEMU 7.2: record it again for another version');
    const live = await record(version, qemuPair);
    expect(live.sequences).to.deep.equal(qemu.sequences);
  });
});
