/**
 * Fuzzes the migration URI parser with random text after every scheme:
 * it may only throw MigrationUriError, and what it accepts must be usable.
 */
import { expect } from 'chai';
import { isIPv6 } from 'node:net';
import { MigrationUriError, parseMigrationUri } from '../../protocols/transport/uri.js';
import { fuzzIterations, fuzzSeed, SeededRandom } from './seeded-random.js';

const ITERATIONS = fuzzIterations(30000);
const SCHEMES = ['tcp:', 'unix:', 'file:', 'exec:', 'fd:', 'rdma:', 'vsock:', 'TCP:', '', 'tcp', 'file:/x,'];
const PIECES = [':', '[', ']', '::1', ',', 'offset=', '4K', '0', '65535', '65536', '-', '.', 'a', ' ', '\0', 'é', '9'.repeat(20), 'x'.repeat(120)];

function randomUri(random: SeededRandom): string {
  let uri = random.pick(SCHEMES);
  for (let n = random.int(0, 6); n > 0; n--) {
    uri += random.next() < 0.8 ? random.pick(PIECES) : String.fromCharCode(random.int(0, 0x7f));
  }
  return uri;
}

describe('fuzz: migration URI parser', () => {
  const seed = fuzzSeed(0x0121);

  it(`only ever throws MigrationUriError and returns usable URIs (${ITERATIONS} cases, seed ${seed})`, () => {
    const random = new SeededRandom(seed);
    const accepted = new Set<string>();
    for (let i = 0; i < ITERATIONS; i++) {
      const uri = randomUri(random);
      const direction = random.pick(['outgoing', 'incoming'] as const);
      let parsed;
      try {
        parsed = parseMigrationUri(uri, { direction });
      } catch (error) {
        if (!(error instanceof MigrationUriError)) throw new Error(`${JSON.stringify(uri)} threw ${String(error)}`);
        continue;
      }
      accepted.add(parsed.scheme);
      switch (parsed.scheme) {
        case 'tcp':
          expect(Number.isInteger(parsed.port) && parsed.port >= 0 && parsed.port <= 65535, uri).to.equal(true);
          // An empty host: every interface when listening; when connecting, QEMU's resolution failure (outgoing.ts).
          expect(parsed.host === '' || /^[A-Za-z0-9._-]+$/.test(parsed.host) || isIPv6(parsed.host), uri).to.equal(true);
          break;
        case 'unix':
          expect(parsed.path.length > 0 && Buffer.byteLength(parsed.path) <= 107 && !parsed.path.includes('\0'), uri).to.equal(true);
          break;
        case 'file':
          expect(parsed.path.length > 0 && Number.isSafeInteger(parsed.offset) && parsed.offset >= 0, uri).to.equal(true);
          break;
        case 'exec':
          expect(parsed.command.trim().length > 0, uri).to.equal(true);
          break;
        case 'fd':
          expect(Number.isInteger(parsed.fd) && parsed.fd >= 0 && parsed.fd <= 0x7fffffff, uri).to.equal(true);
          break;
      }
    }
    expect([...accepted].sort()).to.deep.equal(['exec', 'fd', 'file', 'tcp', 'unix']);
  });
});
