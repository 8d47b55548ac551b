/**
 * Decodes text that holds exactly one JSON value, with QMP's rules (QEMU's
 * qobject_from_json): the same lexer, parser and bounds as the monitor's
 * input, so a value a command line takes is one QMP would take too.
 *
 * @example decodeJson('{"max": 18446744073709551615}') // { max: 18446744073709551615n }
 */
import { JsonParseError, parseError } from './json-parser.js';
import { JsonStreamer } from './json-streamer.js';
import type { JsonValue } from './types.js';

export function decodeJson(text: string): JsonValue {
  const streamer = new JsonStreamer();
  const messages = [...streamer.push(Buffer.from(text, 'utf8')), ...streamer.flush()];
  const first = messages[0];
  if (first === undefined) throw parseError('premature EOI');
  if ('error' in first) throw first.error;
  if (messages.length > 1) throw new JsonParseError('Expecting at most one JSON value');
  return first.value;
}
