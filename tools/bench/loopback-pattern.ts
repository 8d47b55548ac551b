/**
 * The bytes the loopback reference moves: an AES-128-CTR keystream from a
 * key both peers know. The sender fills its memory with it; the receiver
 * regenerates it afterwards and compares, so every byte is verified without
 * a hash or a second copy in flight. AES-NI makes it cheap (GB/s), and it
 * never produces a zero page, so nothing could be skipped.
 */
import { createCipheriv } from 'node:crypto';

const CHUNK = 16 << 20;
const ZEROS = Buffer.alloc(CHUNK);
const IV = Buffer.alloc(16);

/** Walks the keystream in chunks, handing each chunk with its offset to `each`. */
function walk(key: Buffer, size: number, each: (offset: number, bytes: Buffer) => boolean): boolean {
  const cipher = createCipheriv('aes-128-ctr', key, IV);
  for (let offset = 0; offset < size; offset += CHUNK) {
    const bytes = cipher.update(ZEROS.subarray(0, Math.min(CHUNK, size - offset)));
    if (!each(offset, bytes)) return false;
  }
  return true;
}

export function fillPattern(key: Buffer, memory: SharedArrayBuffer): void {
  walk(key, memory.byteLength, (offset, bytes) => {
    bytes.copy(Buffer.from(memory, offset, bytes.length));
    return true;
  });
}

/** True when `memory` holds exactly the keystream of `key`. */
export function verifyPattern(key: Buffer, memory: SharedArrayBuffer): boolean {
  return walk(key, memory.byteLength, (offset, bytes) => bytes.equals(Buffer.from(memory, offset, bytes.length)));
}
