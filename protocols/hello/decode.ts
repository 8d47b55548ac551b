import {
  ChannelKind, HELLO_CHANNEL_COUNT_OFFSET, HELLO_CHANNEL_ID_OFFSET, HELLO_KIND_OFFSET, HELLO_MAGIC_OFFSET,
  HELLO_RESERVED1_OFFSET, HELLO_RESERVED2_OFFSET, HELLO_SIZE, HELLO_UUID_OFFSET, HELLO_VERSION_OFFSET, STREAM_MAGIC, STREAM_VERSION,
} from './constants.js';
import { HelloError } from './errors.js';
import type { ChannelHello } from './types.js';
import { readUuid } from './uuid.js';

const CHANNEL_KINDS: readonly number[] = Object.values(ChannelKind);

/**
 * Checks the magic in the first 4 bytes, so a decoder can refuse a stranger
 * as soon as they arrive rather than after the whole hello.
 */
export function checkHelloMagic(bytes: Uint8Array): void {
  const magic = new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(HELLO_MAGIC_OFFSET);
  // A TLS handshake record: content type 22, protocol major version 3.
  if (bytes[0] === 0x16 && bytes[1] === 0x03) {
    throw new HelloError('BAD_MAGIC', 'Not a livemig migration stream: the source speaks TLS (tls-creds is set there) and this destination does not (set tls-creds here too)');
  }
  if (magic !== STREAM_MAGIC) {
    throw new HelloError('BAD_MAGIC', `Not a livemig migration stream (magic ${hex32(magic)}, expected ${hex32(STREAM_MAGIC)})`);
  }
}

/** Reads and checks a 32-byte channel hello. */
export function decodeHello(bytes: Uint8Array): ChannelHello {
  if (bytes.length < HELLO_SIZE) {
    throw new HelloError('TRUNCATED', `Migration stream truncated in its channel hello (${bytes.length} of ${HELLO_SIZE} bytes)`);
  }
  checkHelloMagic(bytes);
  const view = new DataView(bytes.buffer, bytes.byteOffset, HELLO_SIZE);
  const version = view.getUint16(HELLO_VERSION_OFFSET);
  if (version !== STREAM_VERSION) {
    throw new HelloError('BAD_VERSION', `Unsupported migration stream version ${version} (this build reads version ${STREAM_VERSION})`);
  }
  const kind = view.getUint8(HELLO_KIND_OFFSET);
  const channelId = view.getUint8(HELLO_CHANNEL_ID_OFFSET);
  const channelCount = view.getUint8(HELLO_CHANNEL_COUNT_OFFSET);
  if (!CHANNEL_KINDS.includes(kind)) throw new HelloError('BAD_HELLO', `Unknown channel kind ${kind} in channel hello`);
  if (channelCount < 1 || channelId >= channelCount) {
    throw new HelloError('BAD_HELLO', `Channel hello names channel ${channelId} of ${channelCount}`);
  }
  const reserved =
    view.getUint16(HELLO_RESERVED1_OFFSET) | view.getUint8(HELLO_RESERVED1_OFFSET + 2) | view.getUint32(HELLO_RESERVED2_OFFSET);
  if (reserved !== 0) throw new HelloError('BAD_HELLO', 'Channel hello has non-zero reserved bytes');
  const uuid = readUuid(bytes, HELLO_UUID_OFFSET);
  const hello: ChannelHello = { version, kind: kind as ChannelKind, channelId, channelCount };
  if (uuid !== undefined) hello.uuid = uuid;
  return hello;
}

function hex32(value: number): string {
  return `0x${value.toString(16).padStart(8, '0')}`;
}
