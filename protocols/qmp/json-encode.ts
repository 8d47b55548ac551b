/**
 * JSON encoder for QMP output. Bigints are written as bare integers, so a
 * uint64 above 2^53 reaches the client exactly. Separators follow QEMU's
 * compact form (`{"return": {}, "id": 1}`). As with JSON.stringify,
 * members whose value is undefined are left out and non-finite numbers are
 * written as null.
 *
 * @example encodeJson({ return: { 'max-bandwidth': 18446744073709551615n } })
 *   // '{"return": {"max-bandwidth": 18446744073709551615}}'
 */
export function encodeJson(value: unknown): string {
  switch (typeof value) {
    case 'bigint':
      return value.toString();
    case 'number':
      return Number.isFinite(value) ? String(value) : 'null';
    case 'boolean':
      return value ? 'true' : 'false';
    case 'string':
      return JSON.stringify(value);
    case 'object':
      if (value === null) return 'null';
      if (Array.isArray(value)) {
        return `[${value.map((item) => (isOmitted(item) ? 'null' : encodeJson(item))).join(', ')}]`;
      }
      return `{${Object.entries(value)
        .filter(([, member]) => !isOmitted(member))
        .map(([key, member]) => `${JSON.stringify(key)}: ${encodeJson(member)}`)
        .join(', ')}}`;
    default:
      return 'null';
  }
}

function isOmitted(value: unknown): boolean {
  return value === undefined || typeof value === 'function' || typeof value === 'symbol';
}
