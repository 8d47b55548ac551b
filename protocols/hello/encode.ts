import {
  ChannelKind, HELLO_CHANNEL_COUNT_OFFSET, HELLO_CHANNEL_ID_OFFSET, HELLO_KIND_OFFSET, HELLO_MAGIC_OFFSET,
  HELLO_SIZE, HELLO_UUID_OFFSET, HELLO_VERSION_OFFSET, STREAM_MAGIC, STREAM_VERSION,
} from './constants.js';
import { HelloError } from './errors.js';
import type { ChannelHello } from './types.js';
import { writeUuid } from './uuid.js';

const CHANNEL_KINDS: readonly number[] = Object.values(ChannelKind);

/**
 * The 32-byte hello that opens every connection.
 *
 * @example socket.write(encodeHello({ kind: ChannelKind.MULTIFD, channelId: 1, channelCount: 4, uuid }))
 */
export function encodeHello(hello: Omit<ChannelHello, 'version'>): Buffer {
  const { kind, channelId, channelCount, uuid } = hello;
  if (!CHANNEL_KINDS.includes(kind)) throw new HelloError('BAD_HELLO', `Unknown channel kind ${kind}`);
  if (!isUint(channelCount, 255) || channelCount < 1 || !isUint(channelId, channelCount - 1)) {
    throw new HelloError('BAD_HELLO', `Channel id ${channelId} of ${channelCount} is out of range (count 1-255, id below count)`);
  }
  const out = Buffer.alloc(HELLO_SIZE);
  out.writeUInt32BE(STREAM_MAGIC, HELLO_MAGIC_OFFSET);
  out.writeUInt16BE(STREAM_VERSION, HELLO_VERSION_OFFSET);
  out[HELLO_KIND_OFFSET] = kind;
  out[HELLO_CHANNEL_ID_OFFSET] = channelId;
  out[HELLO_CHANNEL_COUNT_OFFSET] = channelCount;
  try {
    writeUuid(out, HELLO_UUID_OFFSET, uuid);
  } catch (error) {
    throw new HelloError('BAD_HELLO', (error as Error).message);
  }
  return out;
}

function isUint(value: number, max: number): boolean {
  return Number.isInteger(value) && value >= 0 && value <= max;
}
