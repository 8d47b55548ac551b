/**
 * A sink slower than the snapshot (the background-snapshot bench's exec:
 * command): `node throttled-sink.mjs BYTES_PER_SECOND FILE` copies stdin to
 * FILE at that rate, averaged from the first byte, as a slow disk would
 * take it. While it sleeps the pipe fills and the source's pass waits.
 * Plain JavaScript: it starts inside the measured snapshot, and tsx would
 * add a few hundred ms to that.
 */
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

const bytesPerSecond = Number(process.argv[2]);
const out = createWriteStream(process.argv[3]);
let startedAt;
let bytes = 0;
for await (const chunk of process.stdin) {
  startedAt ??= Date.now();
  bytes += chunk.length;
  if (!out.write(chunk)) await once(out, 'drain');
  const aheadMs = (bytes / bytesPerSecond) * 1000 - (Date.now() - startedAt);
  if (aheadMs > 0) await sleep(aheadMs);
}
out.end();
await once(out, 'close');
