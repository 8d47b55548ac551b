import { open } from 'node:fs/promises';
import { defineCommand, type QmpCommand } from '../../protocols/qmp/command.js';
import { genericError } from '../../protocols/qmp/errors.js';
import { strerror } from '../../protocols/qmp/strerror.js';
import { NO_ARGUMENTS, qapi } from '../../protocols/qmp/schema.js';
import { EXTENSION_PREFIX } from '../../protocols/qmp/livemig-extensions.js';
import type { MonitorHost } from './host.js';

const CHUNK = 16 << 20;

/**
 * pmemsave (QEMU's: guest-physical memory to a file, pc.ram mapped from
 * address 0) and livemig's extensions to look at the guest: its RAM digest,
 * its description, and the `ab` check.
 */
export function memoryCommands(host: MonitorHost): [string, QmpCommand][] {
  const guest = host.guest;
  return [
    ['pmemsave', defineCommand({
      args: qapi.object({ val: qapi.uint64, size: qapi.uint64, filename: qapi.str }),
      run: async ({ val, size, filename }) => {
        const ram = guest.blocks[0]!;
        const start = BigInt(val);
        const end = start + BigInt(size);
        if (end > BigInt(ram.size)) {
          throw genericError(`Invalid addr 0x${start.toString(16)}/size ${size} specified: it goes beyond the ${ram.size}-byte guest RAM`);
        }
        let file;
        try {
          file = await open(filename, 'w');
        } catch (err) {
          throw genericError(`Could not open '${filename}': ${strerror(err as NodeJS.ErrnoException)}`);
        }
        try {
          const buffer = Buffer.allocUnsafe(Math.min(CHUNK, Number(size)));
          for (let at = Number(start); at < Number(end); at += buffer.length) {
            const chunk = buffer.subarray(0, Math.min(buffer.length, Number(end) - at));
            ram.readInto(at, chunk);
            await file.write(chunk);
          }
        } finally {
          await file.close();
        }
        return {};
      },
    })],
    [`${EXTENSION_PREFIX}query-digest`, defineCommand({
      args: NO_ARGUMENTS,
      run: async () => (await guest.digest()).map((d) => ({ block: d.block, size: d.size, sha256: d.sha256 })),
    })],
    [`${EXTENSION_PREFIX}query-guest`, defineCommand({
      args: NO_ARGUMENTS,
      run: () => ({
        smp: guest.smp,
        workload: { ...guest.workload },
        blocks: guest.blocks.map((b) => ({ name: b.name, size: b.size })),
        prefaulted: guest.prefaultDone,
        // Pages each vCPU's workload has stepped through (mod 2^32): its throughput over a window.
        'vcpu-work': guest.workDone(),
        // auto-converge's throttle on the vCPUs: the percent of their time spent asleep.
        'cpu-throttle': guest.throttle,
        ...(host.uuid ? { uuid: host.uuid } : {}),
      }),
    })],
    // A byte written into guest RAM from outside (a device's DMA): e.g. to make a COLO secondary differ from its primary.
    [`${EXTENSION_PREFIX}guest-write`, defineCommand({
      args: qapi.object({ address: qapi.uint64, value: qapi.uint8 }),
      run: ({ address, value }) => {
        const ram = guest.blocks[0]!;
        if (BigInt(address) >= BigInt(ram.size)) throw genericError(`Invalid addr 0x${BigInt(address).toString(16)}: it is beyond the ${ram.size}-byte guest RAM`);
        guest.writeByte(Number(address), value);
        return {};
      },
    })],
    [`${EXTENSION_PREFIX}check-ab`, defineCommand({
      args: NO_ARGUMENTS,
      run: () => {
        if (guest.running) throw genericError('The ab check needs a stopped guest: run stop first');
        if (guest.workload.kind !== 'ab') throw genericError(`The guest runs workload '${guest.workload.kind}', not 'ab'`);
        const report = guest.checkAb();
        // A corrupt guest can have many bad pages: list the first ones.
        return { ok: report.ok, 'bad-pages': report.badPages.length, 'first-bad-pages': report.badPages.slice(0, 16) };
      },
    })],
  ];
}
