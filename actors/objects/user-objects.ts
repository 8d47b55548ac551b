/**
 * QEMU's user-creatable objects (`-object`, object-add, object-del), the
 * kinds migration uses: TLS credentials and authorisation lists. Each is
 * checked and loaded when it is created, with QEMU's errors; object-del
 * refuses one that a running migration uses.
 */
import { validateArguments } from '../../protocols/qmp/validate-arguments.js';
import { genericError } from '../../protocols/qmp/errors.js';
import { qapi, type ObjectSchema } from '../../protocols/qmp/schema.js';
import type { JsonObject } from '../../protocols/qmp/types.js';
import { authzList, authzListFile, authzSimple, type Authz } from './authz.js';
import { loadPsk, loadX509, type TlsCreds } from './tls-creds.js';

export const OBJECT_TYPES = ['tls-creds-x509', 'tls-creds-psk', 'tls-creds-anon', 'authz-simple', 'authz-list', 'authz-listfile'] as const;
export type ObjectType = (typeof OBJECT_TYPES)[number];

const ENDPOINT = qapi.optional(qapi.enumOf(['client', 'server'] as const));
const POLICY = qapi.enumOf(['deny', 'allow'] as const);

/** Each type's properties besides qom-type and id (QEMU 8.2's ObjectOptions branches). */
const PROPERTIES: { readonly [T in ObjectType]: ObjectSchema } = {
  'tls-creds-x509': qapi.object({
    dir: qapi.optional(qapi.str), endpoint: ENDPOINT, 'verify-peer': qapi.optional(qapi.bool), 'sanity-check': qapi.optional(qapi.bool),
    loaded: qapi.optional(qapi.bool), priority: qapi.optional(qapi.str),
  }),
  'tls-creds-psk': qapi.object({
    dir: qapi.optional(qapi.str), endpoint: ENDPOINT, 'verify-peer': qapi.optional(qapi.bool), username: qapi.optional(qapi.str),
    loaded: qapi.optional(qapi.bool), priority: qapi.optional(qapi.str),
  }),
  'tls-creds-anon': qapi.object({
    dir: qapi.optional(qapi.str), endpoint: ENDPOINT, 'verify-peer': qapi.optional(qapi.bool), loaded: qapi.optional(qapi.bool), priority: qapi.optional(qapi.str),
  }),
  'authz-simple': qapi.object({ identity: qapi.str }),
  'authz-list': qapi.object({
    policy: qapi.optional(POLICY),
    rules: qapi.optional(qapi.array(qapi.object({ match: qapi.str, policy: POLICY, format: qapi.optional(qapi.enumOf(['exact', 'glob'] as const)) }))),
  }),
  'authz-listfile': qapi.object({ filename: qapi.str, refresh: qapi.optional(qapi.bool) }),
};

/**
 * object-add's arguments as the monitor checks them first: every type's
 * properties, each optional; add() then holds them to the one type's.
 */
export const OBJECT_ADD_ARGS: ObjectSchema = qapi.object(Object.fromEntries([
  ['qom-type', qapi.optional(qapi.str)],
  ['id', qapi.optional(qapi.str)],
  ...Object.values(PROPERTIES).flatMap((schema) => Object.entries(schema.members).map(([name, member]) => [name, member.kind === 'optional' ? member : qapi.optional(member)])),
]));

/** The properties of `type` that are booleans (QEMU's keyval takes on/off for them). */
export function booleanProperties(type: ObjectType): string[] {
  return Object.entries(PROPERTIES[type].members).filter(([, m]) => isBool(m)).map(([name]) => name);
}

function isBool(member: ObjectSchema['members'][string]): boolean {
  const schema = member.kind === 'optional' ? member.of : member;
  return schema === qapi.bool;
}

export type UserObject = { id: string; type: ObjectType } & ({ creds: TlsCreds } | { authz: Authz });

/** QEMU's id_wellformed: a letter, then letters, digits, '-', '.' and '_'. */
function wellFormedId(id: string): boolean {
  return /^[A-Za-z][A-Za-z0-9._-]*$/.test(id);
}

export class UserObjects {
  private readonly objects = new Map<string, UserObject>();

  /** @param inUse why an object may not go now (a running migration uses it), or null */
  constructor(private readonly inUse: (id: string) => boolean = () => false) {}

  /**
   * object-add: `args` holds qom-type, id and the type's properties.
   *
   * @throws QmpError with QEMU's text
   */
  add(args: JsonObject): UserObject {
    const given: JsonObject = {};
    for (const key of ['qom-type', 'id']) if (Object.hasOwn(args, key)) given[key] = args[key]!;
    const { 'qom-type': type, id } = validateArguments(qapi.object({ 'qom-type': qapi.enumOf(OBJECT_TYPES), id: qapi.str }), given);
    if (!wellFormedId(id)) throw genericError("Parameter 'id' expects an identifier");
    const rest: JsonObject = { ...args };
    delete rest['qom-type'];
    delete rest.id;
    const props = validateArguments(PROPERTIES[type], rest) as Record<string, unknown>;
    if (this.objects.has(id)) throw genericError(`attempt to add duplicate property '${id}' to object (type 'container')`);
    let object: UserObject;
    try {
      object = { id, type, ...create(type, props) };
    } catch (err) {
      throw genericError((err as Error).message);
    }
    this.objects.set(id, object);
    return object;
  }

  /** @throws QmpError with QEMU's text */
  del(id: string): void {
    const object = this.objects.get(id);
    if (!object) throw genericError(`object '${id}' not found`);
    if (this.inUse(id)) throw genericError(`object '${id}' is in use, can not be deleted`);
    if ('authz' in object) object.authz.close();
    this.objects.delete(id);
  }

  get(id: string): UserObject | undefined {
    return this.objects.get(id);
  }

  list(): UserObject[] {
    return [...this.objects.values()];
  }

  close(): void {
    for (const object of this.objects.values()) if ('authz' in object) object.authz.close();
  }
}

/** Properties QEMU takes that livemig cannot honour: refused rather than ignored. */
function refuseUnhonoured(type: ObjectType, p: Record<string, unknown>): void {
  if (p.priority !== undefined) throw new Error(`Property 'priority' of ${type} is not supported by livemig: it is a GnuTLS priority string, and livemig's TLS is Node's OpenSSL`);
  if (type === 'tls-creds-anon' && p.dir !== undefined) throw new Error("Property 'dir' of tls-creds-anon is not supported by livemig: its only use (dh-params.pem) does not apply to Node's TLS");
}

function create(type: ObjectType, p: Record<string, unknown>): { creds: TlsCreds } | { authz: Authz } {
  refuseUnhonoured(type, p);
  const endpoint = (p.endpoint as 'client' | 'server' | undefined) ?? 'client';
  const dir = p.dir as string | undefined;
  const needDir = () => {
    if (dir === undefined) throw new Error(`Parameter 'dir' is missing: ${type} reads its credentials from a directory`);
    return dir;
  };
  switch (type) {
    case 'tls-creds-x509':
      return { creds: loadX509(needDir(), endpoint, (p['verify-peer'] as boolean | undefined) ?? true, (p['sanity-check'] as boolean | undefined) ?? true) };
    case 'tls-creds-psk':
      return { creds: loadPsk(needDir(), endpoint, (p.username as string | undefined) ?? 'qemu') };
    case 'tls-creds-anon':
      return { creds: { kind: 'tls-creds-anon', endpoint } };
    case 'authz-simple':
      return { authz: authzSimple(p.identity as string) };
    case 'authz-list': {
      const rules = ((p.rules as { match: string; policy: 'allow' | 'deny'; format?: 'exact' | 'glob' }[] | undefined) ?? [])
        .map((r) => ({ ...r, format: r.format ?? 'exact' as const }));
      return { authz: authzList(rules, (p.policy as 'allow' | 'deny' | undefined) ?? 'deny') };
    }
    case 'authz-listfile':
      return { authz: authzListFile(p.filename as string, (p.refresh as boolean | undefined) ?? true) };
  }
}
