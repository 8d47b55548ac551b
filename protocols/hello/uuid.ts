/**
 * The guest UUID as the channel hello carries it: 16 raw bytes, all zero when
 * the guest has none (QEMU's `qemu_uuid` default).
 */
import { UUID_SIZE } from './constants.js';

/** A UUID in canonical text form. */
export const UUID_TEXT = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Writes `uuid` (canonical text form) into `target` at `offset`; zeros when undefined. */
export function writeUuid(target: Uint8Array, offset: number, uuid: string | undefined): void {
  if (uuid === undefined) {
    target.fill(0, offset, offset + UUID_SIZE);
    return;
  }
  if (!UUID_TEXT.test(uuid)) throw new RangeError(`'${uuid}' is not a UUID (expected xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)`);
  const hex = uuid.replaceAll('-', '');
  for (let i = 0; i < UUID_SIZE; i++) target[offset + i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
}

/** Reads 16 bytes at `offset` as a lower-case canonical UUID; undefined when all zero. */
export function readUuid(source: Uint8Array, offset: number): string | undefined {
  let hex = '';
  let zero = true;
  for (let i = 0; i < UUID_SIZE; i++) {
    const byte = source[offset + i] ?? 0;
    if (byte !== 0) zero = false;
    hex += byte.toString(16).padStart(2, '0');
  }
  if (zero) return undefined;
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
