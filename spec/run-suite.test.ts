/**
 * npm test's runner (spec/support/run-suite.ts) ends the run once mocha has
 * printed its closing line, whatever mocha left behind: a mocha that cannot
 * exit (a FIFO read blocked in a libuv thread) is named and killed, and the
 * status is the closing line's; a process holding mocha's output does not
 * hold the runner's.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { commandLine, killProcesses, processTable, type ProcessEntry } from '../tools/bench/process-usage.js';
import { REPO_ROOT } from './support/instances.js';
import { scratchDirPerTest } from './support/scratch-dir.js';

const FIXTURE = 'spec/fixtures/suite-left-running.ts';
/** The runner's arguments: mocha's, for the fixture alone (no config: it would add the whole suite). */
const MOCHA_ARGS = ['--no-config', '--node-option', 'import=tsx', '--extension', 'ts', '--reporter', './spec/support/summary-reporter.cjs', FIXTURE];
const RUN_BOUND_MS = 60_000;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the runner on the fixture; with `interruptOn`, sends it SIGINT (a Ctrl-C) once its output holds that text. */
function runSuite(env: Record<string, string>, interruptOn?: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const runner = spawn(process.execPath, ['--import', 'tsx', 'spec/support/run-suite.ts', ...MOCHA_ARGS], {
      cwd: REPO_ROOT,
      env: { ...process.env, LIVEMIG_SUITE_EXIT_GRACE_MS: '2000', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let interrupted = false;
    runner.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (interruptOn !== undefined && !interrupted && stdout.includes(interruptOn)) interrupted = runner.kill('SIGINT');
    });
    runner.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    // 'close' waits for the runner's output to end: a run whose pipes something else still held would time out here.
    const bound = setTimeout(() => {
      runner.kill('SIGKILL');
      reject(new Error(`the runner did not end its output within ${RUN_BOUND_MS} ms:\n${stdout}\n${stderr}`));
    }, RUN_BOUND_MS);
    runner.once('close', (code) => {
      clearTimeout(bound);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Processes still running the fixture, or one of its sleeps. */
function fixtureProcesses(): ProcessEntry[] {
  return processTable().filter((p) => {
    const command = commandLine(p.pid);
    return p.state !== 'Z' && (command.includes(FIXTURE) || /^sleep 6[12]\.25$/.test(command));
  });
}

/** Waits up to a second for the fixture's processes to be gone (a killed process takes a moment on a busy machine). */
async function fixtureGone(): Promise<ProcessEntry[]> {
  for (let i = 0; i < 20 && fixtureProcesses().length > 0; i++) await new Promise((r) => setTimeout(r, 50));
  return fixtureProcesses();
}

describe('npm test\'s runner', function () {
  this.timeout(RUN_BOUND_MS + 10_000);
  // A run cut off by the bound leaves its mocha in a session of its own, out of the suite-end hook's sight.
  const scratch = scratchDirPerTest('livemig-run-suite-', async () => {
    killProcesses(fixtureProcesses());
  });

  it('kills a mocha that cannot exit after its closing line, naming the blocked read, and exits 0 as the tests passed', async () => {
    const run = await runSuite({ LIVEMIG_FIXTURE: 'fifo', LIVEMIG_FIXTURE_DIR: scratch() });
    expect(run.stdout).to.match(/^1 passed, 0 failed, 0 skipped$/m);
    expect(run.stderr).to.include('mocha printed its closing line 2 s ago and has not exited');
    expect(run.stderr).to.match(/waits in \w*pipe_read, system call \d+ on descriptor \d+ \(.*never-written\.fifo\)/);
    expect(run.stderr).to.include("killed; the run's status is its closing line's (0 failed)");
    expect(run.code).to.equal(0);
    expect(await fixtureGone()).to.deep.equal([]);
  });

  it('exits 1 when the closing line counts a failure', async () => {
    const run = await runSuite({ LIVEMIG_FIXTURE: 'fifo', LIVEMIG_FIXTURE_DIR: scratch(), LIVEMIG_FIXTURE_FAILS: '1' });
    expect(run.stdout).to.match(/^0 passed, 1 failed, 0 skipped$/m);
    expect(run.stderr).to.include("(1 failed)");
    expect(run.code).to.equal(1);
    expect(await fixtureGone()).to.deep.equal([]);
  });

  it('passes a Ctrl-C on to mocha, and its status says the run was interrupted (130)', async () => {
    const run = await runSuite({ LIVEMIG_FIXTURE: 'wait' }, 'waiting for a Ctrl-C');
    expect(run.code).to.equal(130);
    expect(await fixtureGone()).to.deep.equal([]);
  });

  it('ends its own output although a process a test started still holds mocha\'s, and kills what is left in mocha\'s session', async () => {
    const run = await runSuite({ LIVEMIG_FIXTURE: 'orphan', LIVEMIG_FIXTURE_DIR: scratch(), LIVEMIG_FIXTURE_SLEEP: '61.25' });
    const sleeping = (seconds: string) => processTable().filter((p) => p.state !== 'Z' && commandLine(p.pid) === `sleep ${seconds}`);
    const outside = sleeping('61.25');
    killProcesses(outside);
    expect(run.code).to.equal(0);
    expect(run.stdout).to.match(/^1 passed, 0 failed, 0 skipped$/m);
    expect(outside, 'the orphan in a session of its own outlived the run').to.have.length(1);
    expect(run.stderr).to.match(/^left running after mocha exited, now killed: pid \d+ sleep 62\.25$/m);
    expect(await fixtureGone()).to.deep.equal([]);
  });
});
