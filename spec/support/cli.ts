/**
 * Runs one `livemig COMMAND ARGS` to its end, as a user's shell would, for
 * tests of the command line: its exit code or signal and everything it
 * printed. Killed after `timeoutMs`.
 */
import { spawn } from 'node:child_process';
import { LIVEMIG, REPO_ROOT } from './instances.js';

export interface CliOutcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function runCli(command: string, args: string[], timeoutMs = 15_000): Promise<CliOutcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', LIVEMIG, command, ...args], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: timeoutMs,
      killSignal: 'SIGKILL',
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}
