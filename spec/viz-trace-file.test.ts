/**
 * Saved visualizer traces: the server hands out what it has seen as a
 * trace file, `livemig viz --replay` serves one again, and a file that is
 * not a trace is refused saying what is wrong with it.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startVizServer, type VizServer } from '../tools/viz/server.js';
import { parseTrace, TRACE_FORMAT, TraceFileError } from '../tools/viz/trace-file.js';
import { LIVEMIG, REPO_ROOT } from './support/instances.js';

const TRANSITION = { topic: 'transition', side: 'source', from: 'none', to: 'setup', at: 1_700_000_000_000, via: 'event' } as const;

describe('viz traces', () => {
  let viz: VizServer | undefined;
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'livemig-viz-trace-'))));
  afterEach(async () => {
    await viz?.close();
    viz = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  it('GET /api/trace saves the connections and the history, and a replaying server shows them as replayed', async () => {
    viz = await startVizServer({ port: 0 });
    viz.timeline.publish({ topic: 'connection', side: 'source', address: 'unix:/run/src.qmp', state: 'connected', detail: null, trace: true });
    viz.timeline.publish(TRANSITION);
    const response = await fetch(`${viz.url}api/trace`);
    expect(response.headers.get('content-disposition')).to.match(/^attachment; filename="livemig-trace-[\dT-]+Z\.json"$/);
    const trace = parseTrace(await response.text(), 'saved');
    expect(trace).to.deep.include({ format: TRACE_FORMAT, version: 1 });
    expect(trace.updates).to.deep.equal([
      { topic: 'connection', side: 'source', address: 'unix:/run/src.qmp', state: 'connected', detail: null, trace: true },
      TRANSITION,
    ]);
    await viz.close();

    viz = await startVizServer({ port: 0, replay: { trace, name: 'saved.json' } });
    const charts = (await (await fetch(`${viz.url}api/charts`)).json()) as Record<string, { address: string | null }>;
    expect([charts.source!.address, charts.destination!.address]).to.deep.equal(['unix:/run/src.qmp', null]);
    expect(viz.timeline.updates()).to.deep.equal([
      { topic: 'connection', side: 'source', address: 'unix:/run/src.qmp', state: 'replayed', detail: 'replayed from saved.json', trace: true },
      TRANSITION,
    ]);
  });

  const BAD: [string, string, string][] = [
    ['not JSON', '{"format": ', 'x.json is not JSON (Unexpected end of JSON input): a trace is what the page\'s "Save trace" wrote'],
    ['another format', '{"format": "har"}', 'x.json is not a livemig viz trace (no "format": "livemig-viz-trace")'],
    ['another version', '{"format": "livemig-viz-trace", "version": 2, "updates": []}', 'x.json is a trace of version 2; this livemig reads version 1'],
    ['no updates', '{"format": "livemig-viz-trace", "version": 1}', 'x.json has no "updates" list'],
    ['an unknown topic', '{"format": "livemig-viz-trace", "version": 1, "updates": [{"topic": "gossip", "side": "source", "at": 1}]}', 'x.json: update 0 has an unknown topic "gossip"'],
    ['no side', '{"format": "livemig-viz-trace", "version": 1, "updates": [{"topic": "sample", "at": 1}]}', 'x.json: update 0 has no side (source or destination)'],
    ['no time', '{"format": "livemig-viz-trace", "version": 1, "updates": [{"topic": "sample", "side": "source"}]}', 'x.json: update 0 has no time ("at", ms since the epoch)'],
  ];
  for (const [what, text, message] of BAD) {
    it(`refuses a file with ${what}, saying so`, () => {
      expect(() => parseTrace(text, 'x.json')).to.throw(TraceFileError, message);
    });
  }

  it('livemig viz --replay refuses a file that is not a trace, or one given with --source, with status 2', async () => {
    const file = join(dir, 'x.json');
    writeFileSync(file, '{"format": "har"}');
    const run = (args: string[]) =>
      promisify(execFile)(process.execPath, ['--import', 'tsx', LIVEMIG, 'viz', ...args], { cwd: REPO_ROOT }).then(() => null, (e: { code: number; stderr: string }) => e);
    expect(await run(['--replay', file, '--port', '0'])).to.deep.include({ code: 2, stderr: `livemig viz: ${file} is not a livemig viz trace (no "format": "livemig-viz-trace")\n` });
    expect(await run(['--replay', file, '--source', 'unix:/run/src.qmp'])).to.deep.include({
      code: 2, stderr: 'livemig viz: --replay serves a saved trace: it follows no instance, so it takes no --source or --destination\n',
    });
    expect(await run(['--replay', join(dir, 'missing.json'), '--port', '0'])).to.deep.include({ code: 2 });
  });
});
