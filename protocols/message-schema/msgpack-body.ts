import { Unpackr } from 'msgpackr';

/**
 * Stream control messages and return-path bodies come from a peer: no
 * structured-clone references, 64-bit integers as plain numbers (the
 * schemas then reject anything beyond 2^53).
 */
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number', structuredClone: false });

/**
 * Decodes one msgpack message body from a peer; throws an Error whose
 * message says in a person's words why the bytes are not one.
 */
export function unpackBody(bytes: Uint8Array): unknown {
  try {
    return unpackr.unpack(bytes);
  } catch (error) {
    const text = error instanceof Error ? error.message : String(error);
    // msgpackr names a value it looked for past the end of the body `undefined` ("Unknown extension undefined").
    throw new Error(text.endsWith(' undefined') ? 'it ends inside a value' : text.slice(0, 120));
  }
}
