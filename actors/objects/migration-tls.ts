/**
 * What `tls-creds`, `tls-hostname` and `tls-authz` make of a migration's
 * connections (QEMU's migration/tls.c): the objects they name are looked up
 * when a migration starts, with QEMU's errors, and turned into the session
 * settings each channel uses. Channel threads get the same as plain data.
 */
import type { TlsClient, TlsServer } from '../../protocols/tls/session.js';
import type { MigrationUri } from '../../protocols/transport/uri.js';
import type { MigrationParameters } from '../options/parameters.js';
import { authzList, type Authz, type AuthzRules } from './authz.js';
import type { TlsCreds, TlsEndpoint } from './tls-creds.js';
import type { UserObjects } from './user-objects.js';

/** The destination's TLS settings as a channel thread receives them (no functions cross threads). */
export interface TlsServerData {
  creds: TlsCreds;
  authz?: AuthzRules;
}

type TlsParameters = Partial<Pick<MigrationParameters, 'tls-hostname'>> & Pick<MigrationParameters, 'tls-creds' | 'tls-authz'>;

/** The credentials `tls-creds` names, for `endpoint`; undefined when tls-creds is empty (no TLS). */
function credentials(objects: UserObjects, params: TlsParameters, endpoint: TlsEndpoint): TlsCreds | undefined {
  const id = params['tls-creds'];
  if (id === '') return undefined;
  const object = objects.get(id);
  if (!object) throw new Error(`No TLS credentials with id '${id}'`);
  if (!('creds' in object)) throw new Error(`Object with id '${id}' is not TLS credentials`);
  if (object.creds.endpoint !== endpoint) throw new Error(`Expected TLS credentials for a ${endpoint} endpoint`);
  return object.creds;
}

/**
 * The source's TLS settings for `uri`, or undefined without TLS. The
 * destination's certificate must name tls-hostname, else the URI's host
 * (tcp: only; elsewhere x509 then fails as QEMU's does, for want of a name).
 */
export function tlsClientFor(objects: UserObjects, params: TlsParameters, uri: MigrationUri): TlsClient | undefined {
  const creds = credentials(objects, params, 'client');
  if (!creds) return undefined;
  const hostname = params['tls-hostname'] || (uri.scheme === 'tcp' ? uri.host : undefined);
  return { creds, hostname };
}

/** The authorisation `tls-authz` names, if set. */
function authorisation(objects: UserObjects, params: TlsParameters): Authz | undefined {
  const id = params['tls-authz'];
  if (id === '') return undefined;
  const object = objects.get(id);
  if (!object) throw new Error(`Cannot find QAuthZ object ID ${id}`);
  if (!('authz' in object)) throw new Error(`Object '${id}' is not a QAuthZ subclass`);
  return object.authz;
}

/** The destination's main-thread TLS settings, or undefined without TLS: tls-authz is asked at each handshake, as it stands then. */
export function tlsServerFor(objects: UserObjects, params: TlsParameters): TlsServer | undefined {
  const creds = credentials(objects, params, 'server');
  if (!creds) return undefined;
  const authz = authorisation(objects, params);
  return authz ? { creds, authorize: (name) => authz.isAllowed(name) } : { creds };
}

/** The same for a channel thread: tls-authz's rules as they stand when the migration starts. */
export function tlsServerDataFor(objects: UserObjects, params: TlsParameters): TlsServerData | undefined {
  const creds = credentials(objects, params, 'server');
  if (!creds) return undefined;
  const authz = authorisation(objects, params);
  return authz ? { creds, authz: authz.snapshot() } : { creds };
}

/** A channel thread's settings, from their data form. */
export function tlsServerFrom(data: TlsServerData): TlsServer {
  if (!data.authz) return { creds: data.creds };
  const authz = authzList(data.authz.rules, data.authz.policy);
  return { creds: data.creds, authorize: (name) => authz.isAllowed(name) };
}
