/**
 * The benchmark's own setup: real QEMU (Debian's `qemu-system-x86`) is the
 * yardstick, and nasm builds the boot sector its dirtying guest runs, so a
 * clean machine gets both installed here rather than by hand.
 */
import { spawn, spawnSync } from 'node:child_process';

export const QEMU_BINARY = 'qemu-system-x86_64';
/** apt on a slow mirror can take minutes; past this the bench gives up on QEMU. */
const INSTALL_TIMEOUT_MS = 15 * 60_000;

export class QemuSetupError extends Error {
  readonly code = 'QEMU_SETUP';
}

/** The QEMU binary's version line, or undefined when it is not on PATH. */
export function qemuVersion(): string | undefined {
  const r = spawnSync(QEMU_BINARY, ['--version'], { encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0) return undefined;
  return r.stdout.split('\n')[0]?.trim();
}

function nasmRuns(): boolean {
  return spawnSync('nasm', ['-v'], { timeout: 10_000 }).status === 0;
}

/**
 * Makes sure qemu-system-x86_64 and nasm run: installs the Debian packages
 * missing with apt (`apt-get update` once, then install). Needs root.
 */
export async function ensureQemu(log: (line: string) => void): Promise<string> {
  const present = qemuVersion();
  const missing = [...(present ? [] : ['qemu-system-x86']), ...(nasmRuns() ? [] : ['nasm'])];
  if (missing.length === 0) return present!;
  const packages = missing.join(' ');
  if (process.getuid?.() !== 0) {
    throw new QemuSetupError(`${packages} not installed and the bench is not root: run 'sudo apt-get install -y ${packages}' once, or pass --no-qemu`);
  }
  log(`installing Debian's ${packages} (apt-get update, then install; at most ${INSTALL_TIMEOUT_MS / 60_000} min)`);
  const deadline = Date.now() + INSTALL_TIMEOUT_MS;
  await apt(['update'], deadline);
  await apt(['install', '-y', '--no-install-recommends', ...missing], deadline);
  const installed = qemuVersion();
  if (!installed) throw new QemuSetupError(`apt-get installed qemu-system-x86 but ${QEMU_BINARY} still does not run`);
  if (!nasmRuns()) throw new QemuSetupError('apt-get installed nasm but it still does not run');
  log(`installed: ${packages} (${installed})`);
  return installed;
}

function apt(args: string[], deadline: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('apt-get', args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
    let output = '';
    const keep = (chunk: Buffer) => (output = (output + chunk.toString()).slice(-4000));
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const timer = setTimeout(() => child.kill('SIGKILL'), Math.max(0, deadline - Date.now()));
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new QemuSetupError(`could not run apt-get: ${err.message}; install the packages by hand or pass --no-qemu`));
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) return resolve();
      const why = signal ? `was killed (${signal}) after the install time bound` : `exited with ${code}`;
      reject(new QemuSetupError(`apt-get ${args.join(' ')} ${why}; install the packages by hand or pass --no-qemu.\n${output.trim()}`));
    });
  });
}
