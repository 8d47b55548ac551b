/** Small helpers for tests that judge a QMP monitor's answers. */
import { QmpError } from '../../protocols/qmp/errors.js';
import type { TestInstance } from './instances.js';

/** The error class and text a command was refused with; throws if it succeeded. */
export async function refusal(promise: Promise<unknown>): Promise<{ class: string; desc: string }> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof QmpError) return { class: error.errorClass, desc: error.desc };
    throw error;
  }
  throw new Error('the command succeeded');
}

/** The address a `--qmp tcp:HOST:0` monitor bound, read from the instance's JSON log. */
export async function tcpMonitorAddress(instance: TestInstance, timeoutMs = 5000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    // Only whole lines: the last piece may still be arriving.
    for (const line of instance.stderr().split('\n').slice(0, -1)) {
      const entry = JSON.parse(line) as { msg?: unknown; address?: unknown };
      if (entry.msg === 'QMP monitor listening' && typeof entry.address === 'string' && entry.address.startsWith('tcp:')) {
        return entry.address;
      }
    }
    if (Date.now() > deadline) throw new Error(`no TCP monitor address logged:\n${instance.stderr()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
