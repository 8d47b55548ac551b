/**
 * `livemig analyze --json`: the report as one JSON document for tools,
 * with QMP's kebab-case member names. Members that do not apply are left
 * out (a section not reached, a value a command does not carry); `error` is
 * null when the stream was read to its EOF.
 */
import type { CommandEntry } from './command-log.js';
import { CHANNEL_KIND_NAMES, type StreamReport } from './stream-report.js';

export function jsonReport(report: StreamReport): Record<string, unknown> {
  const { hello, header, error } = report;
  const blocks = report.blocks.map((b) => ({
    index: b.index,
    name: b.name,
    size: b.size,
    'page-count': b.pageCount,
    frames: b.frames,
    pages: b.normal + b.zero + b.compressed,
    normal: b.normal,
    zero: b.zero,
    compressed: b.compressed,
    postcopy: b.postcopy,
  }));
  const sum = (key: 'frames' | 'normal' | 'zero' | 'compressed') => report.blocks.reduce((n, b) => n + b[key], 0);
  return {
    file: report.file,
    start: report.start,
    ...(report.fileSize !== undefined ? { 'file-size': report.fileSize } : {}),
    bytes: report.bytes,
    complete: error === undefined,
    hello: hello
      ? {
        offset: hello.offset,
        version: hello.version,
        kind: CHANNEL_KIND_NAMES[hello.kind],
        'channel-id': hello.channelId,
        'channel-count': hello.channelCount,
        uuid: hello.uuid ?? null,
      }
      : null,
    header: header
      ? {
        offset: header.offset,
        'page-size': header.pageSize,
        vcpus: header.vcpus,
        'run-state': header.runState,
        capabilities: header.capabilities,
        uuid: header.uuid ?? null,
      }
      : null,
    'ram-blocks': blocks,
    pages: {
      frames: sum('frames'),
      pages: sum('normal') + sum('zero') + sum('compressed'),
      normal: sum('normal'),
      zero: sum('zero'),
      compressed: sum('compressed'),
      'normal-bytes': sum('normal') * (header?.pageSize ?? 0),
    },
    devices: report.devices.map((d) => ({
      name: d.name,
      instance: d.instance,
      ...(d.headerVersion !== undefined ? { 'header-version': d.headerVersion } : {}),
      ...(d.version !== undefined ? { version: d.version } : {}),
      ...(d.size !== undefined ? { size: d.size } : {}),
      count: d.count,
      packaged: d.packaged,
      ...(d.offset !== undefined ? { offset: d.offset } : {}),
    })),
    ...(report.devicesUnlisted > 0 ? { 'devices-unlisted': report.devicesUnlisted } : {}),
    commands: report.commands.map(jsonCommand),
    ...(report.commandsUnlisted > 0 ? { 'commands-unlisted': report.commandsUnlisted } : {}),
    'command-totals': report.commandTotals,
    ...(report.packageOffset !== undefined ? { 'postcopy-package-offset': report.packageOffset } : {}),
    end: {
      'eof-offset': report.eofOffset ?? null,
      frames: report.frames,
      'pages-frames': report.pagesFrames,
      'frames-after-eof': report.framesAfterEof,
    },
    error: error
      ? {
        code: error.code,
        message: error.message,
        offset: error.place.offset,
        ...(error.place.frame !== undefined ? { frame: error.place.frame, 'frame-offset': error.place.frameOffset } : {}),
        expected: error.place.expected,
      }
      : null,
  };
}

function jsonCommand(entry: CommandEntry): Record<string, unknown> {
  return {
    command: entry.command,
    count: entry.count,
    offset: entry.offset,
    ...(entry.values ? { values: entry.values } : {}),
    ...(entry.lastValue !== undefined ? { 'last-value': entry.lastValue } : {}),
    ...(entry.blocks ? { blocks: entry.blocks } : {}),
    ...(entry.bytes !== undefined ? { bytes: entry.bytes } : {}),
    ...(entry.hostPageSize !== undefined ? { 'host-page-size': entry.hostPageSize, 'target-page-size': entry.targetPageSize } : {}),
    ...(entry.inner ? { inner: entry.inner.map(jsonCommand) } : {}),
  };
}
