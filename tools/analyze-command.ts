/**
 * `livemig analyze`, QEMU's scripts/analyze-migration.py for livemig's own
 * stream. The analyzer (tools/analyze/) is imported only when this command
 * runs: every `livemig run` loads this file through the CLI's entry point.
 */
import type { Command } from 'commander';
import { livemigCommand, size } from './cli-options.js';

interface AnalyzeValues {
  file: string;
  offset: number;
  json?: boolean;
}

export function analyzeCommand(): Command {
  return livemigCommand('analyze', 'livemig analyze')
    .summary('show what a saved or captured migration stream holds')
    .description(`Reads a migration stream saved with a file: URI (or exec:, or the bytes a
source sent on a tcp: or unix: connection, captured) and shows its sections:
the channel hello, the stream header, the RAM blocks with their pages by kind
(normal, zero), the device states, the commands (return path, postcopy, COLO,
multifd flushes) in order, and the end. The stream is read a megabyte at a
time, however large. A corrupt or truncated stream is reported at the byte
offset where it goes wrong, after everything read before it.`)
    .requiredOption('--file <PATH>', "the stream ('-': standard input)")
    .option('--offset <N>', 'where the stream starts in the file, as file:PATH,offset=N (size suffixes allowed)', size, 0)
    .option('--json', 'one JSON document for tools instead')
    .addHelpText('after', '\nExit status: 0 when the stream is whole (hello to EOF), 1 when it is not or cannot be read, 2 on bad options.')
    .action(async (values: AnalyzeValues) => {
      process.exitCode = await analyze(values);
    });
}

async function analyze(values: AnalyzeValues): Promise<number> {
  const { analyzeStream } = await import('./analyze/read-stream.js');
  const { errorLine, textReport } = await import('./analyze/text-report.js');
  const { jsonReport } = await import('./analyze/json-report.js');
  let report;
  try {
    report = await analyzeStream(values.file, values.offset);
  } catch (err) {
    console.error(`livemig analyze: cannot read ${values.file}: ${(err as Error).message}`);
    return 1;
  }
  console.log(values.json ? JSON.stringify(jsonReport(report), null, 2) : textReport(report));
  if (!report.error) return 0;
  console.error(`livemig analyze: ${errorLine(report)}`);
  return 1;
}
