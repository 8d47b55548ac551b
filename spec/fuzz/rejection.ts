/**
 * What a decoder may do with hostile input: accept it, or reject it with a
 * clear error of its own kind. "Clear" means a message that names what was
 * wrong: not empty, and not showing a value that was never filled in.
 */
import { CodedError } from '../../protocols/coded-error.js';

/** Text that betrays a missing or mistyped value in a message. */
const UNCLEAR = /undefined|NaN|\[object |Infinity/;

type ErrorClass = abstract new (...args: never[]) => Error;

/** Rethrows `error` as a property failure unless it is a clear error of one of `kinds`. */
export function expectClearRejection(error: unknown, kinds: readonly ErrorClass[]): void {
  if (!kinds.some((kind) => error instanceof kind)) {
    const kind = error instanceof Error ? error.name : typeof error;
    throw new Error(`threw ${kind} instead of ${kinds.map((k) => k.name).join(' or ')}: ${String(error)}`, { cause: error });
  }
  const { message } = error as Error;
  // Peer data quoted in a message may say anything; only our own words must be clear.
  const ours = message.replace(/"(?:[^"\\]|\\.)*"|'[^']*'/g, "''");
  if (message.trim().length < 8 || UNCLEAR.test(ours)) throw new Error(`unclear error message: ${JSON.stringify(message)}`, { cause: error });
  if (error instanceof CodedError && (typeof error.code !== 'string' || error.code === '')) throw new Error(`error without a code: ${message}`);
}

/** Runs `decode`; a throw is fine if it is a clear rejection of one of `kinds`. Returns whether the input was accepted. */
export function acceptsOrRejects(decode: () => void, kinds: readonly ErrorClass[]): boolean {
  try {
    decode();
    return true;
  } catch (error) {
    expectClearRejection(error, kinds);
    return false;
  }
}
