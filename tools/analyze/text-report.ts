/**
 * `livemig analyze`'s report for a person: one section per part of the
 * stream, in the order they come, each with the byte offset it starts at.
 */
import type { CommandEntry } from './command-log.js';
import { CHANNEL_KIND_NAMES, type StreamReport } from './stream-report.js';

/** Longer command lists show their head and tail (--json has them all). */
const COMMANDS_SHOWN = 60;
const COMMANDS_HEAD = 40;
const COMMANDS_TAIL = 10;
/** Section names are this wide. */
const LABEL = 12;

export function textReport(report: StreamReport): string {
  const out: string[] = [];
  const line = (label: string, text: string) => out.push(`${label.padEnd(LABEL)}${text}`);
  const more = (text: string) => out.push(`${' '.repeat(LABEL)}${text}`);

  const size = report.fileSize !== undefined ? `${formatBytes(report.fileSize)} (${report.fileSize} bytes)` : 'standard input';
  const start = report.start > 0 ? `, stream from byte ${report.start}` : '';
  line('stream', `${report.file}: ${size}${start}${report.error ? '' : ', read to its end'}`);

  const { hello, header } = report;
  if (hello) {
    line('hello', `at byte ${hello.offset}: ${CHANNEL_KIND_NAMES[hello.kind]} channel ${hello.channelId} of ${hello.channelCount}, ` +
      `stream version ${hello.version}, guest UUID ${hello.uuid ?? 'none'}`);
  }
  if (header) {
    line('header', `at byte ${header.offset}: page size ${header.pageSize}, ${plural(header.vcpus, 'vCPU')}, run state ${header.runState}` +
      `${header.uuid ? `, UUID ${header.uuid} (validate-uuid)` : ''}`);
    more(`capabilities: ${header.capabilities.length > 0 ? header.capabilities.join(', ') : 'none'}`);
    if (header.capabilities.includes('multifd')) {
      more('multifd: pages went on the multifd channels (connections of their own): here only round-end flushes');
    }
    if (header.capabilities.includes('postcopy-preempt')) {
      more('postcopy-preempt: requested pages went on the preempt channel, not in this stream');
    }
  }

  if (report.blocks.length > 0) {
    const postcopy = report.packageOffset !== undefined;
    const compressed = report.blocks.some((b) => b.compressed > 0);
    line('RAM blocks', 'pages in the stream by kind (a page sent again counts again)');
    const rows = [['#', 'block', 'size', '(pages)', 'frames', 'normal', 'zero', ...(compressed ? ['compressed'] : []), ...(postcopy ? ['postcopy'] : [])]];
    for (const b of report.blocks) {
      rows.push([String(b.index), b.name, formatBytes(b.size), `(${b.pageCount})`, String(b.frames), String(b.normal), String(b.zero),
        ...(compressed ? [String(b.compressed)] : []), ...(postcopy ? [String(b.postcopy)] : [])]);
    }
    if (report.blocks.length > 1) {
      const sum = (key: 'pageCount' | 'frames' | 'normal' | 'zero' | 'compressed' | 'postcopy') => String(report.blocks.reduce((n, b) => n + b[key], 0));
      rows.push(['', 'total', formatBytes(report.blocks.reduce((n, b) => n + b.size, 0)), `(${sum('pageCount')})`, sum('frames'), sum('normal'),
        sum('zero'), ...(compressed ? [sum('compressed')] : []), ...(postcopy ? [sum('postcopy')] : [])]);
    }
    for (const row of table(rows, [true, false, true, true, true, true, true, true, true])) more(row);
    more(`normal: pages with their bytes; zero: zero pages, sent as a flag${compressed ? '; compressed: pages sent as XBZRLE deltas' : ''}` +
      (compressed ? '' : '; none compressed (multifd compresses on its own channels)'));
    if (postcopy) more('postcopy: pages after the postcopy package, sent while the destination ran the guest');
  }

  if (report.devices.length > 0) {
    line('devices', 'device state in the stream');
    const rows = [['name', 'instance', 'version', 'state', 'sent']];
    for (const d of report.devices) {
      const packaged = d.packaged === 0 ? '' : d.packaged === d.count ? ' (in the postcopy package)' : ` (${d.packaged} in the postcopy package)`;
      const sent = d.count === 0 ? 'not sent' : `${d.count}${packaged}`;
      rows.push([d.name, String(d.instance), String(d.version ?? d.headerVersion ?? ''), d.size === undefined ? '-' : formatBytes(d.size), sent]);
    }
    for (const row of table(rows, [false, true, true, true, false])) more(row);
    if (report.devicesUnlisted > 0) more(`… and ${report.devicesUnlisted} states of further devices, not listed`);
  }

  if (report.commands.length > 0) {
    line('commands', 'in stream order (×N: N times back to back)');
    const entries = report.commands;
    const shown = entries.length <= COMMANDS_SHOWN ? entries : [...entries.slice(0, COMMANDS_HEAD), undefined, ...entries.slice(-COMMANDS_TAIL)];
    const width = String(entries.at(-1)!.offset).length;
    for (const entry of shown) {
      if (entry === undefined) more(`… ${entries.length - COMMANDS_HEAD - COMMANDS_TAIL} more (--json lists every one)`);
      else more(`at byte ${String(entry.offset).padStart(width)}  ${describeCommand(entry)}`);
    }
    if (report.commandsUnlisted > 0) more(`… and ${report.commandsUnlisted} entries more, counted below but not listed`);
    if (entries.length > Object.keys(report.commandTotals).length) {
      more(`in all: ${Object.entries(report.commandTotals).map(([command, n]) => (n > 1 ? `${command} ×${n}` : command)).join(', ')}`);
    }
  }

  const frames = `${plural(report.frames, 'frame')} (${report.pagesFrames} PAGES, ${report.frames - report.pagesFrames} CONTROL)`;
  if (report.eofOffset !== undefined) {
    const after = report.framesAfterEof > 0 ? `, then ${plural(report.framesAfterEof, 'frame')} after it (COLO checkpoints)` : '';
    line('end', `EOF at byte ${report.eofOffset}${after}; ${frames}, ${report.bytes} bytes of stream`);
  } else {
    line('end', `not reached: ${frames} read whole before the error`);
  }

  const error = report.error;
  if (error) {
    const { offset, frame, frameOffset, expected } = error.place;
    const where = frame === undefined
      ? ''
      : frameOffset === offset ? ` (frame ${frame})` : ` (frame ${frame}, which starts at byte ${frameOffset})`;
    line('error', `at byte ${offset}${where}: ${error.message}`);
    more(`expected there: ${expected}`);
  }
  return out.join('\n');
}

/** One line of `livemig analyze: …` for stderr. */
export function errorLine(report: StreamReport): string {
  const error = report.error!;
  const { offset, expected } = error.place;
  return `${report.file}: error at byte ${offset}: ${error.message} (expected there: ${expected})`;
}

/** A command entry as one line: name, repeat count, values and what it carries. */
export function describeCommand(entry: CommandEntry): string {
  let text = entry.command + (entry.count > 1 ? ` ×${entry.count}` : '');
  const values = entry.values;
  if (values && entry.count === 1) text += ` ${values[0]}`;
  else if (values) {
    const word = entry.command === 'round-end' ? 'round' : 'value';
    text += ` (${values.length === 1 ? word : `${word}s`} ${values.join(', ')}${entry.lastValue !== undefined ? `, …, ${entry.lastValue}` : ''})`;
  }
  if (entry.hostPageSize !== undefined) text += ` (page size: host ${entry.hostPageSize}, target ${entry.targetPageSize})`;
  if (entry.blocks) {
    const blocks = Object.entries(entry.blocks);
    text += entry.command === 'postcopy-discard'
      ? ` (${blocks.map(([name, pages]) => `${name}: ${plural(pages, 'page')}`).join(', ')})`
      : ` (${blocks.map(([name]) => name).join(', ')})`;
  }
  if (entry.bytes !== undefined) text += ` (${formatBytes(entry.bytes)})`;
  if (entry.inner) text += `: ${entry.inner.map(describeCommand).join(', ')}`;
  return text;
}

/** 256 MiB, 1.5 KiB, 12 B. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let unit = 0;
  let value = n;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${Number.isInteger(value) ? value : value.toFixed(1)} ${units[unit]}`;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** Rows as aligned columns, two spaces apart; `right` says which columns are right-aligned. */
function table(rows: string[][], right: boolean[]): string[] {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? '').length)));
  return rows.map((row) => row.map((cell, column) => (right[column] ? cell.padStart(widths[column]!) : cell.padEnd(widths[column]!))).join('  ').trimEnd());
}
