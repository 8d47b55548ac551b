/**
 * Feeds a saved or captured stream to a StreamAnalyzer a chunk at a time:
 * memory stays bounded (one read buffer, reused) however many GiB the
 * stream holds.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { StreamAnalyzer } from './stream-analyzer.js';
import type { StreamReport } from './stream-report.js';

/** Bytes read at a time. */
const CHUNK_SIZE = 1 << 20;

/**
 * Analyzes the stream in `path` from byte `start` on (a `file:PATH,offset=N`
 * stream starts at N); `-` reads standard input, skipping `start` bytes.
 * Throws only when the file cannot be opened; for a bad stream (or a read
 * that fails half-way), the report's `error` says what is wrong and where.
 *
 * @example const report = await analyzeStream('/tmp/guest.mig');
 */
export async function analyzeStream(path: string, start = 0): Promise<StreamReport> {
  const analyzer = new StreamAnalyzer(path, start);
  if (path === '-') {
    await feedChunks(analyzer, skipped(process.stdin as AsyncIterable<Buffer>, start));
  } else {
    const file = await open(path, 'r');
    try {
      analyzer.fileSize = (await file.stat()).size;
      await feedChunks(analyzer, fileChunks(file, start));
    } finally {
      await file.close();
    }
  }
  return analyzer.report();
}

/** Feeds every chunk, then the end; a read that fails is the report's error, where reading stopped. */
async function feedChunks(analyzer: StreamAnalyzer, chunks: AsyncIterable<Uint8Array>): Promise<void> {
  const reading = chunks[Symbol.asyncIterator]();
  for (;;) {
    let next: IteratorResult<Uint8Array>;
    try {
      next = await reading.next();
    } catch (error) {
      return analyzer.readFailed((error as Error).message);
    }
    if (next.done) return analyzer.end();
    if (!analyzer.feed(next.value)) {
      await reading.return?.();
      return;
    }
  }
}

/** The file from `start` on, in chunks of one buffer read into again and again (the analyzer copies what it keeps). */
async function* fileChunks(file: FileHandle, start: number): AsyncGenerator<Uint8Array> {
  const buffer = Buffer.allocUnsafe(CHUNK_SIZE);
  for (let position = start; ;) {
    const { bytesRead } = await file.read(buffer, 0, CHUNK_SIZE, position);
    if (bytesRead === 0) return;
    position += bytesRead;
    yield buffer.subarray(0, bytesRead);
  }
}

/** `chunks` without their first `skip` bytes. */
async function* skipped(chunks: AsyncIterable<Buffer>, skip: number): AsyncGenerator<Uint8Array> {
  for await (const chunk of chunks) {
    if (skip >= chunk.length) {
      skip -= chunk.length;
      continue;
    }
    yield chunk.subarray(skip);
    skip = 0;
  }
}
