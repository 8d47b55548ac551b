/**
 * Startup overrides (`--cap NAME[=on|off]`, `--param NAME=VALUE`): livemig's
 * form of QEMU's `-global migration.x-NAME=VALUE`. A bad flag is a usage
 * error: the CLI prints the message (one line) and exits with status 2.
 */

export class StartupFlagError extends Error {
  override readonly name = 'StartupFlagError';
  readonly code = 'BAD_STARTUP_FLAG';
}

/** `NAME=VALUE` split at the first `=`; `value` is undefined when there is none. */
export function splitFlag(text: string): { name: string; value: string | undefined } {
  const eq = text.indexOf('=');
  return eq === -1 ? { name: text, value: undefined } : { name: text.slice(0, eq), value: text.slice(eq + 1) };
}

const ON = ['on', 'true', 'yes'];
const OFF = ['off', 'false', 'no'];

/** A boolean as QEMU's qapi_bool_parse spells it (on/off, true/false, yes/no), or null. */
export function parseFlagBool(text: string): boolean | null {
  if (ON.includes(text)) return true;
  if (OFF.includes(text)) return false;
  return null;
}
