/**
 * Encoder of return-path messages (encode only; decode.ts reads them).
 */
import { Packr } from 'msgpackr';
import { BITMAP_END_MARK_SIZE, BITMAP_LENGTH_SIZE, RECV_BITMAP_END_MARK, RP_HEADER_SIZE, RP_MAX_BODY } from './constants.js';
import { ReturnPathError } from './errors.js';
import { checkBody, RETURN_PATH_TYPES, type ReturnPathMessage } from './messages.js';

// Its output is a view into a shared scratch buffer: copied into the frame at once.
const packr = new Packr({ useRecords: false, variableMapSize: true });

/**
 * One return-path message, ready to write; RECV_BITMAP includes its bitmap blob.
 *
 * @example socket.write(encodeReturnPath({ type: 'req-pages-id', block: 'pc.ram', start: 0x3000, len: 4096 }))
 */
export function encodeReturnPath(message: ReturnPathMessage): Buffer {
  const info = Object.hasOwn(RETURN_PATH_TYPES, message.type) ? RETURN_PATH_TYPES[message.type] : undefined;
  if (info === undefined) throw new ReturnPathError('INVALID_MESSAGE', `Cannot send unknown return-path message type ${JSON.stringify(message.type)}`);
  const fields: Record<string, unknown> = { ...message };
  delete fields['type'];
  let bitmap: Uint8Array | undefined;
  if (message.type === 'recv-bitmap') {
    if (!(message.bitmap instanceof Uint8Array)) throw new ReturnPathError('BAD_MESSAGE', "Cannot send 'RECV_BITMAP': field 'bitmap' must be binary data");
    bitmap = message.bitmap;
    delete fields['bitmap'];
  }
  const problem = checkBody(message.type, fields);
  if (problem) throw new ReturnPathError('BAD_MESSAGE', `Cannot send '${info.qemuName}': ${problem}`);
  const body = packr.pack(fields);
  if (body.length > RP_MAX_BODY) {
    throw new ReturnPathError('INVALID_MESSAGE', `Cannot send '${info.qemuName}': its body is ${body.length} bytes, more than ${RP_MAX_BODY}`);
  }
  const blobLength = bitmap ? BITMAP_LENGTH_SIZE + bitmap.length + BITMAP_END_MARK_SIZE : 0;
  const out = Buffer.allocUnsafe(RP_HEADER_SIZE + body.length + blobLength);
  out.writeUInt16BE(info.number, 0);
  out.writeUInt16BE(body.length, 2);
  out.set(body, RP_HEADER_SIZE);
  if (bitmap) {
    let at = RP_HEADER_SIZE + body.length;
    out.writeBigUInt64BE(BigInt(bitmap.length), at);
    at += BITMAP_LENGTH_SIZE;
    out.set(bitmap, at);
    out.writeBigUInt64BE(RECV_BITMAP_END_MARK, at + bitmap.length);
  }
  return out;
}
