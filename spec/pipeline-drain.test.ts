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
const never = new AbortController().signal;

describe('the pipeline drain probe', () => {
  it('the first probe is pending until answered; the drain runs from the round\'s end to the PONG', async () => {
    const { path, reverse } = returnPath();
    const drain = new PipelineDrain(path);
    const pings: number[] = [];
    expect(drain.firstPending, 'nothing sent yet').to.equal(false);
    await drain.probe(performance.now(), async (value) => void pings.push(value));
    expect(drain.firstPending).to.equal(true);
    const waiting = drain.firstAnswer(never);
    await sleep(80);
    expect(drain.ms, 'no answer yet').to.equal(undefined);
    reverse.write(encodeReturnPath({ type: 'pong', value: pings[0]! }));
    await waiting;
    expect(drain.ms).to.be.at.least(80);
    expect(drain.firstPending).to.equal(false);
  });

  it('each later answer replaces the drain; PONGs it did not ask for change nothing', async () => {
    const { path, reverse } = returnPath();
    const drain = new PipelineDrain(path);
    const pings: number[] = [];
    const send = async (value: number) => void pings.push(value);
    await drain.probe(performance.now(), send);
    reverse.write(encodeReturnPath({ type: 'pong', value: pings[0]! }));
    await drain.firstAnswer(never);
    const firstMs = drain.ms!;

    // The migration's own PINGs (1 after the header, 4 after the postcopy package) are not probes.
    reverse.write(encodeReturnPath({ type: 'pong', value: 1 }));
    reverse.write(encodeReturnPath({ type: 'pong', value: 4 }));
    await sleep(10);
    expect(drain.ms).to.equal(firstMs);

    await drain.probe(performance.now() - 500, send);
    expect(drain.ms, 'still the first figure until the second probe is answered').to.equal(firstMs);
    expect(pings[1]).to.not.equal(pings[0]);
    reverse.write(encodeReturnPath({ type: 'pong', value: pings[1]! }));
    await sleep(10);
    expect(drain.ms).to.be.at.least(500);
  });

  it('a destination that never answers is waited for a bounded time once, and a cancel ends the wait at once', async () => {
    const { path } = returnPath();
    const drain = new PipelineDrain(path);
    await drain.probe(performance.now(), async () => {});
    const start = performance.now();
    await drain.firstAnswer(never);
    expect(performance.now() - start).to.be.within(900, 5000);
    expect(drain.ms).to.equal(undefined);
    expect(drain.firstPending, 'given up: decisions go on without it').to.equal(false);

    const other = new PipelineDrain(returnPath().path);
    await other.probe(performance.now(), async () => {});
    const cancel = new AbortController();
    const waiting = other.firstAnswer(cancel.signal);
    cancel.abort(new Error('migration cancelled'));
    let error: unknown;
    await waiting.catch((e: unknown) => (error = e));
    expect((error as Error).message).to.equal('migration cancelled');
  });
});
