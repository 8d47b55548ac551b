/**
 * The stream's drain time as the switchover counts it (pipeline-drain.ts):
 * PINGs sent at a round's end on a real return path, answered by PONGs in
 * the bytes a destination would send.
 */
import { expect } from 'chai';
import { PassThrough } from 'node:stream';
import { PipelineDrain } from '../actors/outgoing/pipeline-drain.js';
import { SourceReturnPath } from '../actors/return-path/source-return-path.js';
import { encodeReturnPath } from '../protocols/return-path/encode.js';

const PAGE = 4096;

function returnPath(): { path: SourceReturnPath; reverse: PassThrough } {
  const reverse = new PassThrough();
  const path = new SourceReturnPath(reverse, [{ name: 'pc.ram', size: 16 * PAGE }], PAGE);
  path.open();
  return { path, reverse };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('the pipeline drain probe', () => {
  it('waits for the first answer, and measures from the round\'s end to the PONG', async () => {
    const { path, reverse } = returnPath();
    const drain = new PipelineDrain(path);
    const pings: number[] = [];
    const roundEnd = performance.now();
    const probing = drain.probe(roundEnd, async (value) => void pings.push(value), new AbortController().signal);
    await sleep(80);
    expect(drain.ms, 'no answer yet').to.equal(undefined);
    reverse.write(encodeReturnPath({ type: 'pong', value: pings[0]! }));
    await probing;
    expect(drain.ms).to.be.at.least(80);
    expect(pings).to.have.length(1);
  });

  it('does not wait once a drain is known; each later answer replaces it; PONGs it did not ask for change nothing', async () => {
    const { path, reverse } = returnPath();
    const drain = new PipelineDrain(path);
    const pings: number[] = [];
    const send = async (value: number) => void pings.push(value);
    const signal = new AbortController().signal;
    const first = drain.probe(performance.now(), send, signal);
    reverse.write(encodeReturnPath({ type: 'pong', value: pings[0]! }));
    await first;
    const firstMs = drain.ms!;

    // The migration's own PINGs (1 after the header, 4 after the postcopy package) are not probes.
    reverse.write(encodeReturnPath({ type: 'pong', value: 1 }));
    reverse.write(encodeReturnPath({ type: 'pong', value: 4 }));
    await sleep(10);
    expect(drain.ms).to.equal(firstMs);

    const longAgo = performance.now() - 500;
    await drain.probe(longAgo, send, signal);
    expect(drain.ms, 'still the first figure until the second probe is answered').to.equal(firstMs);
    expect(pings[1]).to.not.equal(pings[0]);
    reverse.write(encodeReturnPath({ type: 'pong', value: pings[1]! }));
    await sleep(10);
    expect(drain.ms).to.be.at.least(500);
  });

  it('a destination that never answers holds the first probe for a bounded time only, and a cancel ends it at once', async () => {
    const { path } = returnPath();
    const drain = new PipelineDrain(path);
    const start = performance.now();
    await drain.probe(start, async () => {}, new AbortController().signal);
    expect(performance.now() - start).to.be.within(900, 5000);
    expect(drain.ms).to.equal(undefined);

    const cancel = new AbortController();
    const probing = drain.probe(performance.now(), async () => {}, cancel.signal);
    cancel.abort(new Error('migration cancelled'));
    let error: unknown;
    await probing.catch((e: unknown) => (error = e));
    expect((error as Error).message).to.equal('migration cancelled');
  });
});
