import { expect } from 'chai';
import {
  isMultiChannel,
  MigrationUriError,
  MULTI_CHANNEL_REQUIRED,
  parseMigrationUri,
  type MigrationUri,
  type MigrationUriErrorCode,
} from '../protocols/transport/uri.js';

const outgoing = { direction: 'outgoing' } as const;
const incoming = { direction: 'incoming' } as const;

function refused(uri: string, direction: 'outgoing' | 'incoming' = 'outgoing'): MigrationUriError {
  try {
    parseMigrationUri(uri, { direction });
  } catch (error) {
    expect(error).to.be.instanceOf(MigrationUriError);
    return error as MigrationUriError;
  }
  throw new Error(`expected '${uri}' to be refused`);
}

function expectRefused(uri: string, code: MigrationUriErrorCode, message: string, direction: 'outgoing' | 'incoming' = 'outgoing'): void {
  const error = refused(uri, direction);
  expect(error.code).to.equal(code);
  expect(error.message).to.equal(message);
}

describe('migration URIs', () => {
  describe('tcp', () => {
    const accepted: [string, MigrationUri][] = [
      ['tcp:127.0.0.1:4444', { scheme: 'tcp', host: '127.0.0.1', port: 4444 }],
      ['tcp:dst.example.com:1', { scheme: 'tcp', host: 'dst.example.com', port: 1 }],
      ['tcp:localhost:65535', { scheme: 'tcp', host: 'localhost', port: 65535 }],
      ['tcp:0.0.0.0:0', { scheme: 'tcp', host: '0.0.0.0', port: 0 }],
      ['tcp:[::1]:4444', { scheme: 'tcp', host: '::1', port: 4444 }],
      ['tcp:[fe80::1:2]:80', { scheme: 'tcp', host: 'fe80::1:2', port: 80 }],
    ];
    for (const [uri, parsed] of accepted) {
      it(`parses ${uri}`, () => {
        expect(parseMigrationUri(uri, outgoing)).to.deep.equal(parsed);
        expect(parseMigrationUri(uri, incoming)).to.deep.equal(parsed);
      });
    }

    it('takes a missing host on an incoming URI as every address', () => {
      expect(parseMigrationUri('tcp::4444', incoming)).to.deep.equal({ scheme: 'tcp', host: '', port: 4444 });
    });

    it('takes a missing host on an outgoing URI, as QEMU does (connecting then fails: nothing to resolve)', () => {
      expect(parseMigrationUri('tcp::4444', outgoing)).to.deep.equal({ scheme: 'tcp', host: '', port: 4444 });
    });

    it('refuses a missing port', () => {
      // QEMU's inet_parse texts.
      expectRefused('tcp:localhost', 'BAD_ADDRESS', "error parsing address 'localhost'");
      expectRefused('tcp:[::1]', 'BAD_ADDRESS', "error parsing IPv6 address '[::1]'");
      expectRefused('tcp:localhost:', 'BAD_ADDRESS', "error parsing address 'localhost:'");
    });

    it('refuses ports outside 0..65535 and non-numeric ports', () => {
      expectRefused('tcp:h:65536', 'BAD_ADDRESS', "Migration URI 'tcp:h:65536' has a bad port '65536' (expected 0 to 65535)");
      expectRefused('tcp:h:-1', 'BAD_ADDRESS', "Migration URI 'tcp:h:-1' has a bad port '-1' (expected 0 to 65535)");
      expectRefused('tcp:h:http', 'BAD_ADDRESS', "Migration URI 'tcp:h:http' has a bad port 'http' (expected 0 to 65535)");
      expectRefused('tcp:h:44 ', 'BAD_ADDRESS', "Migration URI 'tcp:h:44 ' has a bad port '44 ' (expected 0 to 65535)");
    });

    it('refuses an IPv6 address without brackets, with a hint', () => {
      const hint = 'has a malformed address (put an IPv6 address in brackets: tcp:[::1]:4444)';
      expectRefused('tcp:::1:4444', 'BAD_ADDRESS', `Migration URI 'tcp:::1:4444' ${hint}`);
      expectRefused('tcp:fe80::1:4444', 'BAD_ADDRESS', `Migration URI 'tcp:fe80::1:4444' ${hint}`, 'incoming');
    });

    it('refuses a malformed bracketed address', () => {
      expectRefused('tcp:[zz]:1', 'BAD_ADDRESS', "error parsing IPv6 address '[zz]:1'");
      expectRefused('tcp:[::1:1', 'BAD_ADDRESS', "error parsing IPv6 address '[::1:1'");
      expectRefused('tcp:[127.0.0.1]:1', 'BAD_ADDRESS', "error parsing IPv6 address '[127.0.0.1]:1'");
    });

    it('refuses a host with characters no host name has', () => {
      expectRefused('tcp:a b:1', 'BAD_ADDRESS', "Migration URI 'tcp:a b:1' has a malformed host 'a b'");
      expectRefused('tcp:h/x:1', 'BAD_ADDRESS', "Migration URI 'tcp:h/x:1' has a malformed host 'h/x'");
    });
  });

  describe('unix', () => {
    it('parses a socket path', () => {
      expect(parseMigrationUri('unix:/tmp/mig.sock', outgoing)).to.deep.equal({ scheme: 'unix', path: '/tmp/mig.sock' });
      expect(parseMigrationUri('unix:./rel:with:colons', incoming)).to.deep.equal({ scheme: 'unix', path: './rel:with:colons' });
    });

    it('refuses an empty path', () => {
      expectRefused('unix:', 'BAD_PATH', 'invalid Unix socket address');
    });

    it('refuses a path longer than a socket address holds', () => {
      const path = `/tmp/${'x'.repeat(103)}`;
      expect(parseMigrationUri(`unix:${path.slice(0, 107)}`, outgoing)).to.deep.equal({ scheme: 'unix', path: path.slice(0, 107) });
      expectRefused(`unix:${path}`, 'BAD_PATH', `UNIX socket path '${path}' is too long: a path must be less than 108 bytes`);
    });
  });

  describe('file', () => {
    const accepted: [string, MigrationUri][] = [
      ['file:/var/lib/mig.bin', { scheme: 'file', path: '/var/lib/mig.bin', offset: 0 }],
      ['file:/m,offset=4096', { scheme: 'file', path: '/m', offset: 4096 }],
      ['file:/m,offset=4K', { scheme: 'file', path: '/m', offset: 4096 }],
      ['file:/m,offset=2m', { scheme: 'file', path: '/m', offset: 2 * 1024 * 1024 }],
      ['file:/m,offset=3G', { scheme: 'file', path: '/m', offset: 3 * 1024 ** 3 }],
      ['file:/m,offset=0', { scheme: 'file', path: '/m', offset: 0 }],
      ['file:/a,b/c,offset=1K', { scheme: 'file', path: '/a,b/c', offset: 1024 }],
      ['file:/a,offset=1,b', { scheme: 'file', path: '/a,offset=1,b', offset: 0 }],
    ];
    for (const [uri, parsed] of accepted) {
      it(`parses ${uri}`, () => {
        expect(parseMigrationUri(uri, outgoing)).to.deep.equal(parsed);
      });
    }

    it('refuses a bad offset', () => {
      expectRefused(
        'file:/m,offset=abc',
        'BAD_OFFSET',
        "file URI has bad offset 'abc': 'abc' is not a size (expected a number with an optional K, M, G or T suffix)",
      );
      expect(refused('file:/m,offset=').code).to.equal('BAD_OFFSET');
      expect(refused('file:/m,offset=-1').code).to.equal('BAD_OFFSET');
      expect(refused('file:/m,offset=1.5K').code).to.equal('BAD_OFFSET');
      expect(refused('file:/m,offset=99999999T').code).to.equal('BAD_OFFSET');
    });

    it('refuses an empty path', () => {
      expectRefused('file:', 'BAD_PATH', "Migration URI 'file:' has no file path");
      expectRefused('file:,offset=4K', 'BAD_PATH', "Migration URI 'file:,offset=4K' has no file path");
    });
  });

  describe('exec', () => {
    it('keeps the whole command, colons and all', () => {
      expect(parseMigrationUri('exec:cat > /tmp/x; echo a:b', outgoing)).to.deep.equal({ scheme: 'exec', command: 'cat > /tmp/x; echo a:b' });
    });

    it('refuses an empty command', () => {
      expectRefused('exec:', 'BAD_COMMAND', "Migration URI 'exec:' has no command to run");
      expectRefused('exec:  ', 'BAD_COMMAND', "Migration URI 'exec:  ' has no command to run");
    });
  });

  describe('fd', () => {
    it('parses a descriptor number', () => {
      expect(parseMigrationUri('fd:3', incoming)).to.deep.equal({ scheme: 'fd', fd: 3 });
      expect(parseMigrationUri('fd:0', outgoing)).to.deep.equal({ scheme: 'fd', fd: 0 });
    });

    it('refuses a named descriptor, which would come from getfd (none can yet): QEMU\'s text', () => {
      expectRefused('fd:migfd', 'BAD_FD', "File descriptor named 'migfd' has not been found");
      expect(refused('fd:').code).to.equal('BAD_FD');
      expect(refused('fd:-1').code).to.equal('BAD_FD');
      expect(refused('fd:2147483648').code).to.equal('BAD_FD');
    });
  });

  describe('unknown and unsupported schemes', () => {
    it("gives QEMU's outgoing error for an unknown scheme", () => {
      expectRefused('http://x', 'UNKNOWN_PROTOCOL', "Parameter 'uri' expects a valid migration protocol");
      expectRefused('TCP:h:1', 'UNKNOWN_PROTOCOL', "Parameter 'uri' expects a valid migration protocol");
      expectRefused('', 'UNKNOWN_PROTOCOL', "Parameter 'uri' expects a valid migration protocol");
    });

    it("gives QEMU's incoming error for an unknown scheme", () => {
      expectRefused('http://x', 'UNKNOWN_PROTOCOL', 'unknown migration protocol: http://x', 'incoming');
      expectRefused('defer', 'UNKNOWN_PROTOCOL', 'unknown migration protocol: defer', 'incoming');
    });

    it('refuses rdma and vsock as transports livemig does not build', () => {
      expectRefused('rdma:host:4444', 'UNSUPPORTED_TRANSPORT', 'the rdma transport is not supported by livemig');
      expectRefused('vsock:3:4444', 'UNSUPPORTED_TRANSPORT', 'the vsock transport is not supported by livemig', 'incoming');
    });
  });

  describe('multi-channel', () => {
    it('is tcp and unix only', () => {
      expect(['tcp:h:1', 'unix:/s', 'file:/f', 'exec:cat', 'fd:3'].map((uri) => isMultiChannel(uri))).to.deep.equal([
        true,
        true,
        false,
        false,
        false,
      ]);
      expect(isMultiChannel(parseMigrationUri('tcp:[::1]:1', outgoing))).to.equal(true);
      expect(isMultiChannel(parseMigrationUri('unix:/s', outgoing))).to.equal(true);
      expect(isMultiChannel(parseMigrationUri('file:/f,offset=1M', outgoing))).to.equal(false);
      expect(isMultiChannel(parseMigrationUri('fd:4', outgoing))).to.equal(false);
    });

    it("has QEMU's error text", () => {
      expect(MULTI_CHANNEL_REQUIRED).to.equal('Migration requires multi-channel URIs (e.g. tcp)');
    });
  });
});
