/**
 * Runs the comparison's sequences against one engine (QEMU or livemig) and
 * records every answer and MIGRATION event, normalised so that two runs of
 * the same engine record the same thing: bound ports, timestamps and
 * counters vary from run to run, so they are masked; everything else
 * (statuses, member names, error classes and texts, defaults) is kept.
 */
import type { QmpClient } from '../../protocols/qmp/client.js';
import { QmpError } from '../../protocols/qmp/errors.js';
import { statusOfQueryMigrate } from '../../protocols/qmp/migrate-status.js';
import { boundTcpUri } from '../instance-process.js';
import { DESTINATION, MIGRATION_COMMANDS, SEQUENCES, type Sequence, type Side } from './sequences.js';

/** A source and a destination (waiting for migrate-incoming) of one engine, fresh for each sequence. */
export interface EnginePair {
  src: QmpClient;
  dst: QmpClient;
  close(): Promise<void>;
}

export type Answer = { return: unknown } | { error: { class: string; desc: string } };

export interface SequenceRecord {
  name: string;
  /** One per command step, in order: "side command" and its answer. */
  answers: { step: string; answer: Answer }[];
  /** Each side's MIGRATION event statuses, in order. */
  events: Record<Side, string[]>;
}

export interface Recording {
  engine: string;
  sequences: SequenceRecord[];
}

const WAIT_MS = 20_000;

/** Masks what varies between runs (ports in addresses, every number of a query-migrate answer) and drops __org. extensions. */
export function normalise(command: string, value: unknown): unknown {
  const counters = command === 'query-migrate';
  const walk = (v: unknown, key?: string): unknown => {
    if (typeof v === 'number') return counters ? '<number>' : v;
    if (typeof v === 'string') {
      if (key === 'port') return '<port>';
      return v.replace(/((?:\d{1,3}\.){3}\d{1,3}|localhost|\[[0-9a-f:]+\]):\d+/g, '$1:<port>');
    }
    if (Array.isArray(v)) return v.map((x) => walk(x));
    if (v && typeof v === 'object') {
      // Downstream extensions (QMP's __org. prefix) are livemig's own additions, not differences.
      const members = Object.entries(v).filter(([k]) => !k.startsWith('__org.')).sort(([a], [b]) => a.localeCompare(b));
      return Object.fromEntries(members.map(([k, x]) => [k, walk(x, k)]));
    }
    return v;
  };
  return walk(value);
}

/** query-commands as which of the migration commands exist. */
function migrationCommands(list: unknown): string[] {
  const names = new Set((list as { name: string }[]).map((c) => c.name));
  return MIGRATION_COMMANDS.filter((name) => names.has(name));
}

async function answer(qmp: QmpClient, command: string, args: Record<string, unknown> | undefined): Promise<Answer> {
  try {
    const value = await qmp.execute(command, args, { timeoutMs: WAIT_MS });
    return { return: normalise(command, command === 'query-commands' ? migrationCommands(value) : value) };
  } catch (err) {
    if (!(err instanceof QmpError)) throw err;
    return { error: { class: err.errorClass, desc: normalise(command, err.message) as string } };
  }
}

async function waitForStatus(qmp: QmpClient, statuses: string[]): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const info = await qmp.execute<{ status?: string }>('query-migrate');
    if (statuses.includes(statusOfQueryMigrate(info))) return;
    if (Date.now() > deadline) throw new Error(`query-migrate status stayed '${statusOfQueryMigrate(info)}', not one of ${statuses.join(', ')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function run(sequence: Sequence, pair: EnginePair): Promise<SequenceRecord> {
  const events: Record<Side, string[]> = { src: [], dst: [] };
  for (const side of ['src', 'dst'] as const) {
    pair[side].events.on('MIGRATION', (e: { data?: { status?: string } }) => events[side].push(e.data?.status ?? '?'));
  }
  const answers: SequenceRecord['answers'] = [];
  let destination: string | undefined;
  for (const step of sequence.steps) {
    const qmp = pair[step.side];
    if ('waitFor' in step) {
      await waitForStatus(qmp, step.waitFor);
      continue;
    }
    let args = step.arguments;
    if (args?.uri === DESTINATION) args = { ...args, uri: destination ?? 'tcp:127.0.0.1:9' };
    const result = await answer(qmp, step.execute, args);
    if (step.execute === 'migrate-incoming' && 'return' in result && destination === undefined) destination = await boundTcpUri(pair.dst);
    answers.push({ step: `${step.side} ${step.execute}${step.arguments ? ` ${JSON.stringify(step.arguments)}` : ''}`, answer: result });
  }
  // Events still on their way: let them land.
  await new Promise((r) => setTimeout(r, 200));
  return { name: sequence.name, answers, events };
}

/** Records every sequence against an engine; `start` makes a fresh pair for each. */
export async function record(engine: string, start: () => Promise<EnginePair>): Promise<Recording> {
  const sequences: SequenceRecord[] = [];
  for (const sequence of SEQUENCES) {
    const pair = await start();
    try {
      sequences.push(await run(sequence, pair));
    } finally {
      await pair.close();
    }
  }
  return { engine, sequences };
}
