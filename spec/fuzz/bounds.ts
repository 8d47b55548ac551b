/**
 * The work and memory one fuzz case may take. Inputs are at most a few
 * hundred KiB, so a decoder that needs more than a second or holds many
 * MiB more than it was sent is looping or allocating what a length field
 * declared rather than what arrived (a 4 GiB length must fail or wait,
 * never allocate).
 */
const MAX_MILLISECONDS = 1000;
/** Room for a decoder's reusable buffers (one packet or frame at the limits), beyond a multiple of the input. */
const MEMORY_SLACK = 24 << 20;

/** Runs `work` on `inputBytes` of input and throws if it took too long or left too much memory in ArrayBuffers. */
export function withinBounds<T>(inputBytes: number, work: () => T): T {
  const before = process.memoryUsage().arrayBuffers;
  const started = performance.now();
  try {
    return work();
  } finally {
    // Checked whether the work returned or threw: a rejection must be cheap too.
    const took = performance.now() - started;
    const grew = process.memoryUsage().arrayBuffers - before;
    if (took > MAX_MILLISECONDS) throw new Error(`took ${Math.round(took)} ms on ${inputBytes} bytes`);
    if (grew > MEMORY_SLACK + 4 * inputBytes) throw new Error(`ArrayBuffers grew by ${grew} bytes on ${inputBytes} bytes of input`);
  }
}
