/**
 * The commands of a stream in the order they came (QEMU's MIG_CMD_* and
 * their livemig kin: return path, postcopy, COLO, multifd flush), a command
 * repeated back to back counted on one entry rather than listed again.
 */

/** At most this many distinct values are kept per entry (ping values, rounds, COLO steps). */
const MAX_VALUES = 8;
/**
 * At most this many entries are listed (hours of COLO checkpoints make tens
 * of thousands; a hostile stream could make one per frame): after them,
 * commands are only counted, so memory stays bounded.
 */
export const MAX_ENTRIES = 10_000;

export interface CommandEntry {
  /** The message type; for `colo`, `colo <step>` (checkpoint-request, vmstate-send, vmstate-size). */
  command: string;
  /** Times it came back to back. */
  count: number;
  /** Byte offset of the first one's frame. */
  offset: number;
  /** Its values (ping value, round, COLO value), distinct, the first MAX_VALUES of them. */
  values?: number[];
  /** More distinct values came than `values` holds; the last one. */
  lastValue?: number;
  /** postcopy-discard: pages named, by block; recv-bitmap: the blocks asked for (0 pages). */
  blocks?: Record<string, number>;
  /** Bytes of the message's payload (packaged: the package; colo-output: the packets). */
  bytes?: number;
  /** postcopy-advise's page sizes. */
  hostPageSize?: number;
  targetPageSize?: number;
  /** packaged: what the package holds, in order. */
  inner?: CommandEntry[];
}

export interface CommandDetail {
  value?: number;
  block?: string;
  pages?: number;
  bytes?: number;
  hostPageSize?: number;
  targetPageSize?: number;
  inner?: CommandEntry[];
}

export class CommandLog {
  readonly entries: CommandEntry[] = [];
  /** Every command's total, in order of first appearance. */
  readonly totals = new Map<string, number>();
  /** Entries not listed, past MAX_ENTRIES. */
  unlisted = 0;

  add(command: string, offset: number, detail: CommandDetail = {}): void {
    this.totals.set(command, (this.totals.get(command) ?? 0) + 1);
    const last = this.entries.at(-1);
    // A package is shown whole each time; anything else back to back is counted.
    const entry = last && last.command === command && !detail.inner ? last : undefined;
    if (!entry) {
      if (this.entries.length < MAX_ENTRIES) this.entries.push(newEntry(command, offset, detail));
      else this.unlisted++;
      return;
    }
    entry.count++;
    if (detail.value !== undefined) addValue(entry, detail.value);
    if (detail.block !== undefined) entry.blocks = addPages(entry.blocks, detail.block, detail.pages ?? 0);
    if (detail.bytes !== undefined) entry.bytes = (entry.bytes ?? 0) + detail.bytes;
  }
}

function newEntry(command: string, offset: number, detail: CommandDetail): CommandEntry {
  const entry: CommandEntry = { command, count: 1, offset };
  if (detail.value !== undefined) entry.values = [detail.value];
  if (detail.block !== undefined) entry.blocks = addPages(undefined, detail.block, detail.pages ?? 0);
  if (detail.bytes !== undefined) entry.bytes = detail.bytes;
  if (detail.hostPageSize !== undefined) entry.hostPageSize = detail.hostPageSize;
  if (detail.targetPageSize !== undefined) entry.targetPageSize = detail.targetPageSize;
  if (detail.inner) entry.inner = detail.inner;
  return entry;
}

function addValue(entry: CommandEntry, value: number): void {
  const values = (entry.values ??= []);
  if (values.includes(value)) return;
  if (values.length < MAX_VALUES) values.push(value);
  else entry.lastValue = value;
}

function addPages(blocks: Record<string, number> | undefined, block: string, pages: number): Record<string, number> {
  const out = blocks ?? {};
  out[block] = (out[block] ?? 0) + pages;
  return out;
}
