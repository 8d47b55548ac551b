/**
 * `livemig run`'s command line: --help, and every wrong option or value is
 * a one-line error on stderr with exit code 2 (and leaves no socket file).
 */
import { expect } from 'chai';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from './support/cli.js';

/** Runs `livemig run ARGS` to its end. */
const runLivemig = (args: string[]) => runCli('run', args);

/** Every option `livemig run` takes. */
const OPTIONS = [
  '--ram', '--smp', '--block', '--workload', '--ab-start', '--ab-end', '--dirty-rate', '--working-set',
  '--random-start', '--seed', '--uuid', '-S', '--paused', '--incoming', '--cap', '--param', '--qmp', '--help',
  '--colo-digests', '--net-out', '--qmp-remote-plaintext', '--object',
];

describe('livemig run: command line', function () {
  let dir: string;
  let socket: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'livemig-cli-'));
    socket = join(dir, 'vm.qmp');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  for (const flag of ['--help', '-h']) {
    it(`${flag} exits 0 and explains every option`, async () => {
      const { code, signal, stdout, stderr } = await runLivemig([flag]);
      expect({ code, signal, stderr }).to.deep.equal({ code: 0, signal: null, stderr: '' });
      expect(stdout).to.match(/^Usage: livemig run/);
      for (const option of OPTIONS) expect(stdout, option).to.match(new RegExp(`(^|[\\s,])${option}\\b`, 'm'));
      for (const transport of ['unix:PATH', 'tcp:HOST:PORT']) expect(stdout).to.include(transport);
    });
  }

  /** Arguments (a small guest and a monitor are added) → what the one error line must say. */
  const MISTAKES: [what: string, args: string[], says: string | RegExp][] = [
    ['an unknown option', ['--bogus'], '--bogus'],
    ['a stray argument', ['extra'], 'extra'],
    ['a RAM size with an unknown suffix', ['--ram', '12Q'], '--ram'],
    ['a RAM size that is not whole pages', ['--ram', '4097'], '--ram'],
    ['zero vCPUs', ['--smp', '0'], '--smp'],
    ['an unknown workload', ['--workload', 'nosuch'], 'nosuch'],
    ['a malformed uuid', ['--uuid', 'not-a-uuid'], '--uuid'],
    ['an unknown capability', ['--cap', 'nosuch'], 'nosuch'],
    ['a capability state that is not on/off', ['--cap', 'events=maybe'], 'maybe'],
    ['an unknown parameter', ['--param', 'nosuch=1'], 'nosuch'],
    ['a parameter without a value', ['--param', 'downtime-limit'], 'downtime-limit'],
    ['a parameter value that is not a number', ['--param', 'downtime-limit=soon'], 'soon'],
    [
      'a parameter out of QEMU range',
      ['--param', 'downtime-limit=99999999'],
      "Parameter 'downtime_limit' expects an integer in the range of 0 to (2000 * 1000) ms",
    ],
    ['multifd-channels 0', ['--param', 'multifd-channels=0'], "Parameter 'multifd_channels' expects a value between 1 and 255"],
    ['a capability combination QEMU refuses', ['--cap', 'postcopy-preempt'], 'Postcopy preempt requires postcopy-ram'],
    ['a capability not built yet', ['--cap', 'rdma-pin-all'], "Capability 'rdma-pin-all' is not supported by livemig yet"],
    ['an incoming URI it cannot parse', ['--incoming', 'bogus:x'], 'bogus:x'],
    ['a monitor address it cannot parse', ['--qmp', 'bogus:x'], 'bogus:x'],
    [
      'a monitor reachable beyond this host, not asked for knowingly',
      ['--qmp', 'tcp:0.0.0.0:0'],
      '--qmp tcp:0.0.0.0:0 would let anyone who reaches this host drive the guest and read its memory, in plain text',
    ],
    ['a monitor on every interface', ['--qmp', 'tcp::0'], '--qmp tcp::0 would let anyone'],
    ['a monitor option it does not know', ['--qmp', 'tcp:127.0.0.1:0,tls=on'], "unknown monitor option 'tls=on' (expected tls-creds=ID or tls-authz=ID)"],
    ['monitor TLS credentials that do not exist', ['--qmp', 'tcp:127.0.0.1:0,tls-creds=nope'], "No TLS credentials with id 'nope'"],
    [
      'an object QEMU would refuse',
      ['--object', 'tls-creds-x509,id=tls0,dir=/nonexistent,endpoint=server'],
      'Unable to access credentials /nonexistent/ca-cert.pem: No such file or directory',
    ],
    ['an --object flag that is not keyval', ['--object', 'tls-creds-anon,id=a,stray'], "'stray' is not key=value"],
    ['a --net-out that is no socket', ['--net-out', 'file:/tmp/out'], "--net-out takes unix:PATH or tcp:HOST:PORT, not 'file:/tmp/out'"],
  ];
  for (const [what, args, says] of MISTAKES) {
    it(`refuses ${what} with one line on stderr and exit code 2: ${args.join(' ')}`, async () => {
      const { code, signal, stdout, stderr } = await runLivemig(['--ram', '16M', '--qmp', `unix:${socket}`, ...args]);
      expect({ code, signal }, stderr).to.deep.equal({ code: 2, signal: null });
      expect(stdout).to.equal('');
      expect(stderr.endsWith('\n'), 'ends with a newline').to.equal(true);
      const line = stderr.slice(0, -1);
      expect(line, 'a single line').to.not.include('\n');
      expect(line).to.match(/^livemig run: /);
      if (typeof says === 'string') expect(line).to.include(says);
      else expect(line).to.match(says);
      expect(existsSync(socket), 'no socket file left').to.equal(false);
    });
  }

  it('refuses to start without any --qmp monitor', async () => {
    const { code, stderr } = await runLivemig(['--ram', '16M']);
    expect(code).to.equal(2);
    expect(stderr).to.match(/^livemig run: [^\n]*--qmp[^\n]*\n$/);
  });
});
