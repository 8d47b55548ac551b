/**
 * pmemsave and the RAM digest of a real `livemig run`: what an outside tool
 * reads of the guest is exactly the guest's bytes.
 */
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { startInstance, stopAllInstances, type TestInstance } from './support/instances.js';
import { refusal } from './support/qmp-expect.js';

const MiB = 1 << 20;
const PAGE = 4096;

interface BlockDigest {
  block: string;
  size: number;
  sha256: string;
}

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/**
 * Where the `ab` pattern (one vCPU) breaks in `firstBytes`: every page holds
 * H up to a boundary and H-1 (mod 256) from it on. Returns the offending
 * page indexes for the best explanation (empty when the pattern holds).
 */
function abPatternBreaks(firstBytes: number[]): number[] {
  let best: number[] | null = null;
  for (let high = 0; high < 256; high++) {
    const low = (high + 255) & 0xff;
    for (let boundary = 0; boundary <= firstBytes.length; boundary++) {
      const bad = firstBytes.flatMap((v, i) => (v === (i < boundary ? high : low) ? [] : [i]));
      if (best === null || bad.length < best.length) best = bad;
      if (best.length === 0) return best;
    }
  }
  return best!;
}

/** Waits (bounded) until the running ab guest has incremented the page at `address` at least once. */
async function untilGuestWrote(vm: TestInstance, address: number): Promise<void> {
  const probe = join(vm.dir, 'probe.bin');
  const deadline = Date.now() + 10_000;
  for (;;) {
    // pmemsave reads a running guest too.
    await vm.qmp.execute('pmemsave', { val: address, size: 1, filename: probe });
    if (readFileSync(probe)[0] !== 0) return;
    if (Date.now() > deadline) throw new Error(`the ab workload never wrote 0x${address.toString(16)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('livemig instance: guest memory through pmemsave and the digest', function () {
  afterEach(stopAllInstances);

  it('pmemsave writes exactly the ab guest bytes: zeros below the range, the ab pattern in it', async () => {
    const vm = await startInstance(['--ram', '4M', '--workload', 'ab', '--ab-start', '1M', '--ab-end', '2M'], { name: 'pmemsave-ab' });
    await untilGuestWrote(vm, MiB);
    await vm.qmp.execute('stop');
    const file = join(vm.dir, 'low2M.bin');
    expect(await vm.qmp.execute('pmemsave', { val: 0, size: 2 * MiB, filename: file })).to.deep.equal({});
    const bytes = readFileSync(file);
    expect(bytes.length).to.equal(2 * MiB);
    expect(bytes.subarray(0, MiB).equals(Buffer.alloc(MiB)), 'bytes 0..1M are zero').to.equal(true);
    const firstBytes: number[] = [];
    for (let page = MiB; page < 2 * MiB; page += PAGE) {
      firstBytes.push(bytes[page]!);
      // ab touches only the first byte of each page.
      expect(bytes.subarray(page + 1, page + PAGE).equals(Buffer.alloc(PAGE - 1)), `rest of page 0x${page.toString(16)}`).to.equal(true);
    }
    expect(firstBytes).to.have.length(256);
    expect(abPatternBreaks(firstBytes)).to.deep.equal([]);
  });

  it('pmemsave of all of a small guest has the sha256 that __org.livemig_query-digest reports', async () => {
    const vm = await startInstance(['--ram', '4M', '--workload', 'ab', '--ab-start', '1M', '--ab-end', '3M'], { name: 'pmemsave-digest' });
    await untilGuestWrote(vm, MiB);
    await vm.qmp.execute('stop');
    const file = join(vm.dir, 'all.bin');
    await vm.qmp.execute('pmemsave', { val: 0, size: 4 * MiB, filename: file });
    const bytes = readFileSync(file);
    expect(bytes.length).to.equal(4 * MiB);
    const digest = await vm.qmp.execute<BlockDigest[]>('__org.livemig_query-digest');
    expect(digest).to.deep.equal([{ block: 'pc.ram', size: 4 * MiB, sha256: sha256(bytes) }]);
    expect(digest[0]!.sha256).to.not.equal(sha256(Buffer.alloc(4 * MiB)), 'the guest wrote something');
  });

  it('pmemsave of a range in the middle is that slice of guest memory', async () => {
    const vm = await startInstance(['--ram', '4M', '--workload', 'ab', '--ab-start', '1M', '--ab-end', '2M'], { name: 'pmemsave-slice' });
    await untilGuestWrote(vm, MiB);
    await vm.qmp.execute('stop');
    const all = join(vm.dir, 'all.bin');
    const part = join(vm.dir, 'part.bin');
    await vm.qmp.execute('pmemsave', { val: 0, size: 4 * MiB, filename: all });
    const val = MiB + 3 * PAGE + 100;
    const size = 5 * PAGE + 7;
    await vm.qmp.execute('pmemsave', { val, size, filename: part });
    expect(readFileSync(part).equals(readFileSync(all).subarray(val, val + size))).to.equal(true);
  });

  it('refuses pmemsave beyond the end of RAM and keeps serving', async () => {
    const vm = await startInstance(['--ram', '4M'], { name: 'pmemsave-beyond' });
    const file = join(vm.dir, 'beyond.bin');
    const error = await refusal(vm.qmp.execute('pmemsave', { val: 4 * MiB - PAGE, size: 2 * PAGE, filename: file }));
    expect(error.class).to.equal('GenericError');
    // QEMU's memsave text for an address range it cannot read.
    expect(error.desc).to.match(/^Invalid addr 0x0*3ff000\/size 8192 specified/);
    const far = await refusal(vm.qmp.execute('pmemsave', { val: 4 * MiB, size: 1, filename: file }));
    expect(far.class).to.equal('GenericError');
    expect(far.desc).to.match(/^Invalid addr 0x0*400000\/size 1 specified/);
    // The largest address and size still answer a clean error (no wrap-around).
    const huge = await refusal(vm.qmp.execute('pmemsave', { val: 2n ** 64n - 1n, size: 2n ** 64n - 1n, filename: file }));
    expect(huge.class).to.equal('GenericError');
    expect(huge.desc).to.match(/^Invalid addr 0xf{16}\/size 18446744073709551615 specified/);
    // The last page is in range.
    expect(await vm.qmp.execute('pmemsave', { val: 4 * MiB - PAGE, size: PAGE, filename: file })).to.deep.equal({});
    expect(statSync(file).size).to.equal(PAGE);
    expect(await vm.qmp.execute('query-status')).to.deep.equal({ running: true, singlestep: false, status: 'running' });
  });

  it("refuses pmemsave to a file it cannot open with QEMU's text", async () => {
    const vm = await startInstance(['--ram', '4M'], { name: 'pmemsave-open' });
    const file = join(vm.dir, 'no-such-dir', 'x.bin');
    expect(await refusal(vm.qmp.execute('pmemsave', { val: 0, size: PAGE, filename: file }))).to.deep.equal({
      class: 'GenericError',
      desc: `Could not open '${file}': No such file or directory`,
    });
  });

  it('the digest of an idle guest is the sha256 of zeros, for every RAM block', async () => {
    const vm = await startInstance(['--ram', '16M', '--block', 'vga.vram=1M'], { name: 'digest-idle' });
    expect(await vm.qmp.execute('__org.livemig_query-digest')).to.deep.equal([
      { block: 'pc.ram', size: 16 * MiB, sha256: sha256(Buffer.alloc(16 * MiB)) },
      { block: 'vga.vram', size: MiB, sha256: sha256(Buffer.alloc(MiB)) },
    ]);
  });
});
