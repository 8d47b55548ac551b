/**
 * Multifd migrations of a running `ab` guest between real `livemig run`
 * processes, with 1, 2, 4 and 16 channels and each compression: both sides
 * complete, the destination runs on holding every page (the ab check), and
 * query-migrate's `multifd-bytes` accounts for the page data the channels
 * carried.
 */
import { expect } from 'chai';
import { join } from 'node:path';
import type { CompressionMethod } from '../protocols/multifd/constants.js';
import { startInstance, stopAllInstances, type TestInstance } from './support/instances.js';
import { UNLIMITED, boundTcpUri, queryMigrate } from './support/migration-driver.js';
import { MiB, PAGE, channelListenersUp, expectMultifdMigrated, multifdArgs, type MultifdSetup } from './support/multifd-pair.js';
import { scratchDirPerTest } from './support/scratch-dir.js';

const AB = { start: 1 * MiB, end: 32 * MiB };
const GUEST = ['--ram', '64M', '--smp', '1'];
const SOURCE = [...GUEST, '--workload', 'ab', '--ab-start', '1M', '--ab-end', '32M', ...UNLIMITED];
/** Every page of the ab range is written before the migration starts, so at least these cross as data. */
const AB_PAGES = (AB.end - AB.start) / PAGE;

/** A source and a tcp destination with the same multifd setup; migrates and returns both. */
async function migrateOverTcp(setup: MultifdSetup): Promise<[TestInstance, TestInstance]> {
  const [destination, source] = await Promise.all([
    startInstance([...GUEST, ...multifdArgs(setup), '--incoming', 'tcp:127.0.0.1:0'], { name: 'dst' }),
    startInstance([...SOURCE, ...multifdArgs(setup)], { name: 'src' }),
  ]);
  // Many channel workers can take seconds to start on a loaded host: let them listen first.
  if ((setup.channels ?? 2) > 4) await channelListenersUp(destination, setup.channels!);
  await source.qmp.execute('migrate', { uri: await boundTcpUri(destination.qmp) });
  return [source, destination];
}

/**
 * The figures of a completed multifd migration: multifd-bytes is the page
 * data the channels wrote. Uncompressed, that is every normal page plus
 * headers (hellos, packet headers, run descriptors: well under 1%), and it
 * is part of `transferred`; compressed, the ab pages (one non-zero byte each)
 * shrink far below their size.
 */
function expectMultifdFigures(info: Awaited<ReturnType<typeof queryMigrate>>, compression: CompressionMethod): void {
  const ram = info.ram!;
  expect(ram['multifd-bytes'], 'multifd-bytes').to.be.a('number');
  expect(ram.normal, 'normal pages').to.be.at.least(AB_PAGES);
  expect(ram['normal-bytes']).to.equal(ram.normal! * PAGE);
  const multifd = ram['multifd-bytes']!;
  expect(multifd, 'multifd-bytes within transferred').to.be.at.most(ram.transferred!);
  if (compression === 'none') {
    expect(multifd, 'multifd-bytes against normal-bytes').to.be.within(ram['normal-bytes']!, ram['normal-bytes']! * 1.01 + 64 * 1024);
    // Almost everything crossed on the channels, not the main stream.
    expect(ram.transferred! - multifd, 'bytes on the main channel').to.be.below(ram['normal-bytes']! * 0.01 + 64 * 1024);
    expect(info).not.to.have.property('__org.livemig_multifd-compression');
  } else {
    expect(multifd, 'compressed multifd-bytes').to.be.within(1, ram['normal-bytes']! / 10);
    // ab's pages (one non-zero byte each) all go through the compressor, none raw.
    const figures = (info as unknown as Record<string, Record<string, number>>)['__org.livemig_multifd-compression']!;
    expect(figures['compressed-pages']).to.equal(ram.normal);
    expect(figures['raw-pages']).to.equal(0);
    expect(figures['compressed-bytes']).to.be.within(1, multifd);
    expect(figures['compression-rate']).to.be.above(10);
  }
}

describe('multifd migration of a running ab guest (64 MiB)', function () {
  this.timeout(60_000);
  const scratch = scratchDirPerTest('livemig-multifd-', stopAllInstances);

  for (const channels of [1, 2, 4, 16]) {
    it(`${channels} channel${channels > 1 ? 's' : ''}, no compression, over tcp: the destination holds every page`, async () => {
      const [source, destination] = await migrateOverTcp({ channels, compression: 'none' });
      const info = await expectMultifdMigrated(source, destination, AB);
      expectMultifdFigures(info, 'none');
    });
  }

  it('both processes run under V8 options (node --max-old-space-size=… --stack-trace-limit=…): their vCPU and channel threads start without them', async () => {
    // Node refuses V8 options in a thread's execArgv; the threads must be started without them.
    const nodeArgs = ['--max-old-space-size=512', '--stack-trace-limit=20'];
    const [destination, source] = await Promise.all([
      startInstance([...GUEST, ...multifdArgs(), '--incoming', 'tcp:127.0.0.1:0'], { name: 'dst', nodeArgs }),
      startInstance([...SOURCE, ...multifdArgs()], { name: 'src', nodeArgs }),
    ]);
    await source.qmp.execute('migrate', { uri: await boundTcpUri(destination.qmp) });
    expectMultifdFigures(await expectMultifdMigrated(source, destination, AB), 'none');
  });

  it('the default setup (2 channels, no compression) over unix: channels beside the main socket', async () => {
    const path = join(scratch(), 'migrate.sock');
    const [destination, source] = await Promise.all([
      startInstance([...GUEST, ...multifdArgs(), '--incoming', `unix:${path}`], { name: 'dst' }),
      startInstance([...SOURCE, ...multifdArgs()], { name: 'src' }),
    ]);
    expect((await queryMigrate(destination.qmp))['socket-address']).to.deep.equal([{ type: 'unix', path }]);
    await source.qmp.execute('migrate', { uri: `unix:${path}` });
    const info = await expectMultifdMigrated(source, destination, AB);
    expectMultifdFigures(info, 'none');
  });

  const compressed: [string, MultifdSetup][] = [
    ['zlib (level 1)', { channels: 2, compression: 'zlib' }],
    ['zlib level 9', { channels: 2, compression: 'zlib', zlibLevel: 9 }],
    ['zstd (level 1)', { channels: 2, compression: 'zstd' }],
    ['zstd level 5', { channels: 2, compression: 'zstd', zstdLevel: 5 }],
  ];
  for (const [name, setup] of compressed) {
    it(`2 channels with ${name}: the destination holds every page, in far fewer wire bytes`, async () => {
      const [source, destination] = await migrateOverTcp(setup);
      const info = await expectMultifdMigrated(source, destination, AB);
      expectMultifdFigures(info, setup.compression!);
    });
  }
});
