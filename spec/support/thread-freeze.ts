/**
 * Freezes one thread of another process while the rest of it runs on: a
 * destination's multifd channel worker that stops reading, so a test can
 * hold a channel behind the others for as long as it likes. Linux ptrace
 * can stop a single thread (PTRACE_SEIZE + PTRACE_INTERRUPT); Node has no
 * binding for it, so a small python3 helper holds the thread until told to
 * let go (or until it ends: a tracer's exit detaches and resumes it).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';

const FREEZER = `
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
libc.waitpid.argtypes = [ctypes.c_int, ctypes.POINTER(ctypes.c_int), ctypes.c_int]
tid = int(sys.argv[1])
def check(r, what):
    if r != 0:
        print('%s failed: %s' % (what, os.strerror(ctypes.get_errno())), flush=True)
        sys.exit(1)
check(libc.ptrace(0x4206, tid, None, None), 'PTRACE_SEIZE')
check(libc.ptrace(0x4207, tid, None, None), 'PTRACE_INTERRUPT')
status = ctypes.c_int()
libc.waitpid(tid, ctypes.byref(status), 0x40000000)
print('frozen', flush=True)
sys.stdin.readline()
libc.ptrace(17, tid, None, None)
print('thawed', flush=True)
`;

/** Why threads cannot be frozen here (no python3, or ptrace not permitted), or undefined when they can. */
export function freezeUnavailable(): string | undefined {
  const probe = spawnSync('python3', ['-c', 'import ctypes; ctypes.CDLL(None).ptrace'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) return `python3 with ctypes is needed to freeze a thread (${probe.error?.message ?? probe.stderr.trim()})`;
  return undefined;
}

export class FrozenThread {
  private constructor(private readonly helper: ChildProcess) {}

  /** Stops thread `tid` (of any process the caller may trace); resolves once it is stopped. */
  static async freeze(tid: number): Promise<FrozenThread> {
    const helper = spawn('python3', ['-c', FREEZER, String(tid)], { stdio: ['pipe', 'pipe', 'inherit'] });
    let said = '';
    helper.stdout!.setEncoding('utf8');
    await new Promise<void>((resolve, reject) => {
      helper.stdout!.on('data', (chunk: string) => {
        said += chunk;
        if (said.includes('frozen')) resolve();
        else if (said.includes('failed')) reject(new Error(`could not freeze thread ${tid}: ${said.trim()}`));
      });
      helper.once('exit', (code) => reject(new Error(`the freezer of thread ${tid} exited (${code}): ${said.trim()}`)));
    });
    return new FrozenThread(helper);
  }

  /** Lets the thread run again. */
  async thaw(): Promise<void> {
    if (this.helper.exitCode !== null) return;
    const exited = once(this.helper, 'exit');
    this.helper.stdin!.end('\n');
    await exited;
  }
}

/**
 * For a describe block whose tests freeze threads: skips it where threads
 * cannot be frozen (no python3 or no ptrace), and after each test thaws
 * whatever it froze. Returns the freeze to use in its tests. Call it before
 * the block's own afterEach, so threads are thawed before instances stop.
 */
export function threadFreezer(): (tid: number) => Promise<FrozenThread> {
  const frozen: FrozenThread[] = [];
  before(function () {
    if (freezeUnavailable()) this.skip();
  });
  afterEach(async () => {
    await Promise.all(frozen.splice(0).map((f) => f.thaw()));
  });
  return async (tid) => {
    const thread = await FrozenThread.freeze(tid);
    frozen.push(thread);
    return thread;
  };
}
