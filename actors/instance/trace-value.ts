/**
 * What the actor trace shows of an event's payload or a statechart's
 * context: plain JSON, small enough for one QMP event. Errors become their
 * message, bigints decimal strings, byte arrays their length, actor
 * references their id; functions are left out. Past TRACE_VALUE_CHARS the
 * value is cut and says so, so a trace never floods the monitor.
 */
import type { JsonObject, JsonValue } from '../../protocols/qmp/types.js';

export const TRACE_VALUE_CHARS = 4096;
/** Nesting deeper than this is summarised: a trace shows shapes, not whole structures. */
const MAX_DEPTH = 6;

export function traceValue(value: unknown): JsonObject {
  const json = plain(value, 0);
  const object: JsonObject = json !== null && typeof json === 'object' && !Array.isArray(json) ? json : { value: json };
  const text = JSON.stringify(object);
  return text.length <= TRACE_VALUE_CHARS ? object : { truncated: `${text.slice(0, TRACE_VALUE_CHARS)}…`, chars: text.length };
}

function plain(value: unknown, depth: number): JsonValue {
  if (value === null || value === undefined) return null;
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      return Number.isFinite(value) ? value : String(value);
    case 'bigint':
      return value.toString();
    case 'function':
    case 'symbol':
      return null;
  }
  if (value instanceof Error) return { error: value.message };
  if (ArrayBuffer.isView(value)) return `<${value.constructor.name} of ${value.byteLength} bytes>`;
  if (value instanceof ArrayBuffer || value instanceof SharedArrayBuffer) return `<${value.constructor.name} of ${value.byteLength} bytes>`;
  if (depth >= MAX_DEPTH) return '…';
  if (Array.isArray(value)) return value.map((v) => plain(v, depth + 1));
  // An actor reference (XState's): its id, not its whole system.
  const object = value as Record<string, unknown>;
  if ('sessionId' in object && 'send' in object) return `<actor ${String(object.id ?? object.sessionId)}>`;
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(object)) {
    if (typeof v === 'function' || typeof v === 'symbol') continue;
    out[k] = plain(v, depth + 1);
  }
  return out;
}
