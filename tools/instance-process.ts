/**
 * Starts `livemig run` as a child process and connects to its QMP monitor:
 * used by the demo, the benchmark and the integration tests.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { QmpClient } from '../protocols/qmp/client.js';
import { livemigProgram } from './program-bundle.js';

export const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
export const LIVEMIG = join(REPO_ROOT, 'tools', 'livemig.ts');

export interface InstanceProcess {
  readonly process: ChildProcess;
  readonly qmp: QmpClient;
  readonly socket: string;
  /** Everything the process wrote to stderr so far (its JSON log). */
  stderr(): string;
  readonly exited: Promise<number | null>;
}

export interface SpawnOptions {
  /** The QMP unix socket to give it. */
  socket: string;
  name?: string;
  timeoutMs?: number;
  /** Node.js options for the child, e.g. ['--cpu-prof'] to profile it. */
  nodeArgs?: string[];
  /** Extra stdio entries (e.g. descriptors for fd: URIs) after stdin, stdout, stderr. */
  extraStdio?: ('pipe' | 'ignore' | number)[];
  /** A command that runs node in its place (it must exec it), e.g. ['ip', 'netns', 'exec', 'NS'] for a network namespace. */
  wrap?: string[];
}

/** Runs `livemig run --qmp unix:SOCKET <args>` (bundled: see program-bundle.ts) and resolves once its monitor answers. */
export async function spawnInstance(args: string[], options: SpawnOptions): Promise<InstanceProcess> {
  const name = options.name ?? 'vm';
  const command = [process.execPath, ...(options.nodeArgs ?? []), await livemigProgram(), 'run', '--qmp', `unix:${options.socket}`, ...args];
  const [file, ...rest] = [...(options.wrap ?? []), ...command];
  const child = spawn(file!, rest, {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'ignore', 'pipe', ...(options.extraStdio ?? [])],
    env: { ...process.env, LIVEMIG_LOG: process.env.LIVEMIG_LOG ?? 'info' },
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const deadline = Date.now() + (options.timeoutMs ?? 20_000);
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`instance '${name}' exited with ${child.exitCode ?? child.signalCode} before its monitor opened:\n${stderr}`);
    }
    try {
      const qmp = await QmpClient.connect(`unix:${options.socket}`, { timeoutMs: 10_000 });
      return { process: child, qmp, socket: options.socket, stderr: () => stderr, exited };
    } catch {
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`instance '${name}' did not open its monitor in time:\n${stderr}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/**
 * The tcp: URI of the port an instance started with `--incoming tcp:HOST:0`
 * bound (its query-migrate socket-address), on loopback.
 */
export async function boundTcpUri(qmp: QmpClient): Promise<string> {
  const info = await qmp.execute<{ 'socket-address'?: { type: string; port?: string }[] }>('query-migrate');
  const address = info['socket-address']?.[0];
  if (address?.type !== 'inet' || !address.port) throw new Error(`no inet socket-address in ${JSON.stringify(info)}`);
  return `tcp:127.0.0.1:${address.port}`;
}
