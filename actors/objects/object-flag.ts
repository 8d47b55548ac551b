/**
 * `livemig run --object`, as QEMU's -object takes it: either keyval
 * (`tls-creds-x509,id=tls0,dir=/etc/pki/qemu,endpoint=server,verify-peer=on`;
 * `,,` is a literal comma) or a JSON object (`{"qom-type": "authz-list", ...}`,
 * the only way to give a list of rules).
 */
import type { JsonObject } from '../../protocols/qmp/types.js';
import { StartupFlagError } from '../options/startup-flag.js';
import { OBJECT_TYPES, booleanProperties, type ObjectType } from './user-objects.js';

const TRUE = ['on', 'yes', 'true'];
const FALSE = ['off', 'no', 'false'];

/** @throws StartupFlagError with a one-line message */
export function parseObjectFlag(text: string): JsonObject {
  if (text.trimStart().startsWith('{')) {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw new StartupFlagError(`--object ${text}: not valid JSON (${(err as Error).message})`);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new StartupFlagError(`--object ${text}: expected a JSON object`);
    return value as JsonObject;
  }
  // Split on single commas; a doubled one is a comma in the value.
  const parts = text.replace(/,,/g, '\0').split(',').map((p) => p.replace(/\0/g, ','));
  const object: JsonObject = {};
  for (const [i, part] of parts.entries()) {
    const eq = part.indexOf('=');
    if (eq < 0) {
      if (i !== 0) throw new StartupFlagError(`--object ${text}: '${part}' is not key=value`);
      object['qom-type'] = part;
      continue;
    }
    object[part.slice(0, eq)] = part.slice(eq + 1);
  }
  const type = object['qom-type'];
  if (typeof type === 'string' && (OBJECT_TYPES as readonly string[]).includes(type)) {
    for (const name of booleanProperties(type as ObjectType)) {
      const value = object[name];
      if (typeof value !== 'string') continue;
      if (TRUE.includes(value)) object[name] = true;
      else if (FALSE.includes(value)) object[name] = false;
      else throw new StartupFlagError(`--object ${text}: ${name}='${value}' is not on or off`);
    }
  }
  return object;
}
