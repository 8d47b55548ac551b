/**
 * The stream header, the configuration section both sides agree on before
 * any page moves (QEMU's configuration section and RAM setup in savevm.c):
 * the source describes its guest, the destination checks it against its
 * own and refuses a mismatch with QEMU's texts.
 */
import { TARGET_PAGE_SIZE } from '../guest/constants.js';
import type { Guest } from '../guest/guest.js';
import type { HeaderMessage } from '../../protocols/stream/messages.js';

/** The stream header: what the source's guest looks like (QEMU's configuration section + RAM setup). */
export function describeGuest(guest: Guest, options: { uuid: string | undefined; capabilities: string[] }): HeaderMessage {
  return {
    type: 'header',
    pageSize: TARGET_PAGE_SIZE,
    blocks: guest.blocks.map((b) => ({ name: b.name, size: b.size })),
    vcpus: guest.smp,
    devices: guest.devices.list().map((d) => ({ name: d.name, instance: d.instance, version: d.version })),
    ...(options.uuid ? { uuid: options.uuid } : {}),
    runState: guest.runState,
    capabilities: options.capabilities,
  };
}

/**
 * Checks an incoming header against the destination's own guest before any
 * page lands. Returns the load error (QEMU's wording where QEMU has one), or
 * null when the guests match.
 */
export function checkHeader(header: HeaderMessage, guest: Guest, localUuid: string | undefined): string | null {
  if (header.pageSize !== TARGET_PAGE_SIZE) {
    return `Received page size ${header.pageSize} but local is ${TARGET_PAGE_SIZE}`;
  }
  if (header.uuid !== undefined && localUuid !== undefined && header.uuid !== localUuid) {
    return `UUID received is ${header.uuid} and local is ${localUuid}`;
  }
  for (const block of header.blocks) {
    const local = guest.block(block.name);
    if (!local) return `Unknown ramblock "${block.name}", cannot accept migration`;
    if (local.size !== block.size) {
      return `Length mismatch: ${block.name}: 0x${block.size.toString(16)} in != 0x${local.size.toString(16)}: Invalid argument`;
    }
  }
  for (const local of guest.blocks) {
    if (!header.blocks.some((b) => b.name === local.name)) {
      return `RAM block '${local.name}' of this guest is missing from the incoming stream`;
    }
  }
  if (header.vcpus !== guest.smp) {
    return `The source guest has ${header.vcpus} vCPUs but this guest has ${guest.smp} (start it with --smp ${header.vcpus})`;
  }
  for (const device of header.devices) {
    const local = guest.devices.find(device.name, device.instance);
    if (!local) {
      return `Unknown savevm section or instance '${device.name}' ${device.instance}. ` +
        'Make sure that your current VM setup matches your saved VM setup';
    }
    if (device.version > local.version) {
      return `savevm: unsupported version ${device.version} for '${device.name}' v${local.version}`;
    }
  }
  return null;
}
