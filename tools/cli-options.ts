/**
 * What livemig's commands share on the command line (commander): how a
 * mistake is reported, and the option values several commands take —
 * sizes (run, bench), whole numbers (run, viz, bench), QMP monitor
 * addresses (run, migrate, viz), and `--cap` / `--param` (run, migrate).
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { parseCapFlag, type MigrationCapabilityStatus } from '../actors/options/capabilities.js';
import { parseParamFlag, type MigrateSetParameters } from '../actors/options/parameters.js';
import { parseSafeSize } from '../protocols/size.js';

/**
 * A command that reports a mistake as one line on stderr, `PREFIX: what is
 * wrong` (commander's "error: " dropped, its "Did you mean" hint joined to
 * the line), and throws a CommanderError instead of exiting: livemig.ts
 * turns it into the exit status. A stray argument is named (commander's own
 * check only counts them).
 *
 * @example livemigCommand('run', 'livemig run').option('--smp <N>', 'vCPUs', wholeNumber(1, 255), 1)
 */
export function livemigCommand(name: string, errorPrefix: string): Command {
  return new Command(name)
    .configureOutput({ outputError: (text, write) => write(`${errorPrefix}: ${text.replace(/^error: /, '').trim().replace(/\s*\n\s*/g, ' ')}\n`) })
    .exitOverride()
    .allowExcessArguments()
    .hook('preAction', (_command, action) => {
      if (action.args.length > 0) action.error(`unexpected argument '${action.args[0]}'`);
    });
}

/** An option-argument parser: `parse`'s error becomes the reason in commander's "argument 'X' is invalid." line. */
export function valueParser<T>(parse: (text: string) => T): (text: string) => T {
  return (text) => {
    try {
      return parse(text);
    } catch (err) {
      throw new InvalidArgumentError((err as Error).message);
    }
  };
}

/** A repeatable option: each occurrence parsed, in order. */
export function repeatable<T>(parse: (text: string) => T): (text: string, previous: T[] | undefined) => T[] {
  return (text, previous) => [...(previous ?? []), parse(text)];
}

/** A size as QEMU's -m takes it: a number with an optional K, M, G or T suffix. */
export const size = valueParser(parseSafeSize);

/** A size made of whole `granule`s (`granuleText` names one), at least one. */
export function sizeOf(granule: number, granuleText: string): (text: string) => number {
  return valueParser((text) => {
    const bytes = parseSafeSize(text);
    if (bytes === 0 || bytes % granule !== 0) throw new RangeError(`must be a positive multiple of ${granuleText}`);
    return bytes;
  });
}

/** A whole number in decimal, from `min` (to `max`). */
export function wholeNumber(min: number, max?: number): (text: string) => number {
  return (text) => {
    const n = /^\d+$/.test(text) ? Number(text) : NaN;
    if (!(n >= min && n <= (max ?? Number.MAX_SAFE_INTEGER))) {
      throw new InvalidArgumentError(max === undefined ? `expected a whole number of at least ${min}` : `expected a whole number from ${min} to ${max}`);
    }
    return n;
  };
}

/**
 * Values that livemig's own modules parse — QMP monitor addresses, migration
 * URIs, `--cap`, `--param` — are parsed once commander is done, and a
 * mistake is reported in those modules' words alone, which quote the value
 * (`livemig viz: 'udp:x': expected unix:PATH or tcp:HOST:PORT`).
 */
export function parseEach<T>(command: Command, parse: (text: string) => T, texts: readonly string[] = []): T[] {
  return texts.map((text) => {
    try {
      return parse(text);
    } catch (err) {
      return command.error((err as Error).message);
    }
  });
}

/** `--cap NAME[=on|off]`, repeatable (run sets it at start, migrate on both sides): see capsAndParams. */
export function capOption(description: string): Option {
  return new Option('--cap <NAME[=on|off]>', `${description} (repeatable)`).argParser(repeatable(String));
}

/** `--param NAME=VALUE`, repeatable: see capsAndParams. */
export function paramOption(description: string): Option {
  return new Option('--param <NAME=VALUE>', `${description} (repeatable)`).argParser(repeatable(String));
}

/** The capabilities and parameters `command`'s --cap and --param set. */
export function capsAndParams(command: Command): { caps: MigrationCapabilityStatus[]; params: MigrateSetParameters[] } {
  const { cap, param } = command.opts<{ cap?: string[]; param?: string[] }>();
  return { caps: parseEach(command, parseCapFlag, cap), params: parseEach(command, parseParamFlag, param) };
}
