/**
 * A saved visualizer trace: what the page was shown of a migration pair
 * (connections, status transitions with their traced events, query-migrate
 * samples, passes, actor messages), as JSON. The page saves it
 * (GET /api/trace); `livemig viz --replay FILE` serves it again, so a
 * migration seen elsewhere (a CI run) can be scrubbed through in the page.
 */
import { readFile } from 'node:fs/promises';
import type { LiveUpdate } from './timeline.js';

export const TRACE_FORMAT = 'livemig-viz-trace';
export const TRACE_VERSION = 1;
/** The most updates a trace may hold: far beyond a page's history, short of exhausting memory. */
const MAX_UPDATES = 1_000_000;

const TOPICS = new Set(['connection', 'transition', 'edge', 'sample', 'pass', 'message', 'checkpoint']);

export interface TraceFile {
  format: typeof TRACE_FORMAT;
  version: typeof TRACE_VERSION;
  /** When it was saved (ISO 8601). */
  saved: string;
  updates: LiveUpdate[];
}

export function traceFile(updates: LiveUpdate[], saved = new Date()): TraceFile {
  return { format: TRACE_FORMAT, version: TRACE_VERSION, saved: saved.toISOString(), updates };
}

export class TraceFileError extends Error {}

/** Reads and checks a trace file. @throws TraceFileError saying what is wrong with it */
export async function readTraceFile(path: string): Promise<TraceFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new TraceFileError(`cannot read the trace ${path}: ${(err as Error).message}`);
  }
  return parseTrace(text, path);
}

/** @throws TraceFileError */
export function parseTrace(text: string, name: string): TraceFile {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new TraceFileError(`${name} is not JSON (${(err as Error).message}): a trace is what the page's "Save trace" wrote`);
  }
  const trace = value as Partial<TraceFile> | null;
  if (typeof trace !== 'object' || trace === null || trace.format !== TRACE_FORMAT) {
    throw new TraceFileError(`${name} is not a livemig viz trace (no "format": "${TRACE_FORMAT}")`);
  }
  if (trace.version !== TRACE_VERSION) throw new TraceFileError(`${name} is a trace of version ${String(trace.version)}; this livemig reads version ${TRACE_VERSION}`);
  if (!Array.isArray(trace.updates)) throw new TraceFileError(`${name} has no "updates" list`);
  if (trace.updates.length > MAX_UPDATES) throw new TraceFileError(`${name} holds ${trace.updates.length} updates, more than the ${MAX_UPDATES} a trace may`);
  trace.updates.forEach((u: unknown, i) => {
    const update = u as { topic?: unknown; side?: unknown; at?: unknown } | null;
    const where = `${name}: update ${i}`;
    if (typeof update !== 'object' || update === null) throw new TraceFileError(`${where} is not an object`);
    if (typeof update.topic !== 'string' || !TOPICS.has(update.topic)) throw new TraceFileError(`${where} has an unknown topic ${JSON.stringify(update.topic)}`);
    if (update.side !== 'source' && update.side !== 'destination') throw new TraceFileError(`${where} has no side (source or destination)`);
    if (update.topic !== 'connection' && (typeof update.at !== 'number' || !Number.isFinite(update.at))) throw new TraceFileError(`${where} has no time ("at", ms since the epoch)`);
  });
  return trace as TraceFile;
}
