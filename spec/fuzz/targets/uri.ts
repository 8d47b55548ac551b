/**
 * Migration URIs from QMP's `migrate`/`migrate-incoming` and the command
 * line (protocols/transport/uri.ts). What the parser accepts must be usable
 * as it stands: a port in range, a socket path that fits, a descriptor number.
 */
import { expect } from 'chai';
import * as fc from 'fast-check';
import { isIPv6 } from 'node:net';
import { MigrationUriError, parseMigrationUri, type MigrationUri } from '../../../protocols/transport/uri.js';
import { withinBounds } from '../bounds.js';
import { whole } from '../chunking.js';
import type { FuzzTarget } from '../fuzz-target.js';
import { hostileBytes } from '../mutation.js';
import { acceptsOrRejects } from '../rejection.js';

const DIRECTIONS = ['outgoing', 'incoming'] as const;

const safeText = (maxLength: number): fc.Arbitrary<string> =>
  fc.string({ unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789_-./'), minLength: 1, maxLength });

const uriArbitrary: fc.Arbitrary<MigrationUri> = fc.oneof(
  fc.record({ scheme: fc.constant('tcp' as const), host: fc.oneof(fc.constantFrom('localhost', '127.0.0.1', '::1', 'fe80::1:2', 'a-b.example'), fc.ipV4(), fc.ipV6()), port: fc.nat({ max: 65535 }) }),
  fc.record({ scheme: fc.constant('unix' as const), path: safeText(100) }),
  fc.record({ scheme: fc.constant('file' as const), path: safeText(60), offset: fc.nat() }),
  fc.record({ scheme: fc.constant('exec' as const), command: safeText(60) }),
  fc.record({ scheme: fc.constant('fd' as const), fd: fc.nat({ max: 0x7fffffff }) }),
);

function formatUri(uri: MigrationUri): string {
  switch (uri.scheme) {
    case 'tcp':
      return `tcp:${isIPv6(uri.host) ? `[${uri.host}]` : uri.host}:${uri.port}`;
    case 'unix':
      return `unix:${uri.path}`;
    case 'file':
      return `file:${uri.path},offset=${uri.offset}`;
    case 'exec':
      return `exec:${uri.command}`;
    case 'fd':
      return `fd:${uri.fd}`;
  }
}

/** The direction is the input's first byte's pick, so a corpus entry is plain bytes; the rest is the URI as UTF-8. */
const validBytes = fc
  .tuple(fc.nat({ max: 1 }), uriArbitrary)
  .map(([direction, uri]) => Buffer.concat([Uint8Array.of(direction), Buffer.from(formatUri(uri))]));

/** Schemes and pieces that sit on the parser's edges, joined at random. */
const junkBytes = fc
  .tuple(
    fc.nat({ max: 1 }),
    fc.constantFrom('tcp:', 'unix:', 'file:', 'exec:', 'fd:', 'rdma:', 'vsock:', 'TCP:', '', 'file:/x,'),
    fc.array(fc.constantFrom(':', '[', ']', '::1', ',', 'offset=', '4K', '0', '65535', '65536', '-', '.', 'a', ' ', '\0', 'é', '9'.repeat(20), 'x'.repeat(120)), { maxLength: 6 }),
  )
  .map(([direction, scheme, pieces]) => Buffer.concat([Uint8Array.of(direction), Buffer.from(scheme + pieces.join(''))]));

/** What an accepted URI must satisfy to be opened as it stands. */
function expectUsable(uri: MigrationUri, text: string): void {
  switch (uri.scheme) {
    case 'tcp':
      expect(Number.isInteger(uri.port) && uri.port >= 0 && uri.port <= 65535, text).to.equal(true);
      // An empty host: every interface when listening; when connecting, QEMU's resolution failure (outgoing.ts).
      expect(uri.host === '' || /^[A-Za-z0-9._-]+$/.test(uri.host) || isIPv6(uri.host), text).to.equal(true);
      break;
    case 'unix':
      expect(uri.path.length > 0 && Buffer.byteLength(uri.path) <= 107 && !uri.path.includes('\0'), text).to.equal(true);
      break;
    case 'file':
      expect(uri.path.length > 0 && Number.isSafeInteger(uri.offset) && uri.offset >= 0, text).to.equal(true);
      break;
    case 'exec':
      expect(uri.command.trim().length > 0, text).to.equal(true);
      break;
    case 'fd':
      expect(Number.isInteger(uri.fd) && uri.fd >= 0 && uri.fd <= 0x7fffffff, text).to.equal(true);
      break;
  }
}

export const uriTarget: FuzzTarget = {
  name: 'uri',
  input: whole(hostileBytes(validBytes, junkBytes)),
  check({ bytes }) {
    const direction = DIRECTIONS[(bytes[0] ?? 0) % 2] as (typeof DIRECTIONS)[number];
    const text = Buffer.from(bytes.subarray(1)).toString('utf8');
    let parsed: MigrationUri | undefined;
    withinBounds(bytes.length, () => acceptsOrRejects(() => (parsed = parseMigrationUri(text, { direction })), [MigrationUriError]));
    if (parsed !== undefined) expectUsable(parsed, text);
  },
  roundTrip: fc.property(uriArbitrary, fc.constantFrom(...DIRECTIONS), (uri, direction) => {
    expect(parseMigrationUri(formatUri(uri), { direction })).to.deep.equal(uri);
  }),
};
