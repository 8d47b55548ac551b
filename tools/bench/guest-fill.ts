/**
 * Filling a livemig guest's RAM before it migrates, to compare with QEMU
 * migrating a urandom-filled memory file: every page must hold data, or
 * zero-page detection would flatter livemig.
 *
 * When `livemig run` offers `--fill random` the guest starts filled and
 * paused. Until then the `ab` workload (one vCPU, QEMU's migration-test
 * guest) walks all of RAM page after page adding 1 to each page's first
 * byte, and is stopped once it has covered every page: ab leaves value H in
 * the pages before its position and H-1 after, so no page is zero exactly
 * when the first and the last page are not. Those pages hold one non-zero
 * byte each: a copy costs what random data costs (zero checks stop at the
 * first byte either way), but compression is flattered until --fill exists.
 */
import { readFileSync, rmSync } from 'node:fs';
import type { QmpClient } from '../../protocols/qmp/client.js';
import { RUN_HELP } from '../run-options.js';
import { waitUntil } from './wait-until.js';

export const FILL_OPTION_AVAILABLE = /^\s+--fill\b/m.test(RUN_HELP);

const PAGE = 4096;
/** One pass over a few GiB on a busy machine. */
const FILL_TIMEOUT_MS = 120_000;

/** The `livemig run` arguments of a source whose RAM is to be filled. */
export function filledSourceArgs(ram: number): string[] {
  if (FILL_OPTION_AVAILABLE) return ['--fill', 'random', '--paused'];
  return ['--workload', 'ab', '--ab-start', '0', '--ab-end', String(ram), '--paused'];
}

/** Fills the source's RAM (when --fill did not) and leaves its guest stopped; `scratch` is a file path it may use. */
export async function finishFill(qmp: QmpClient, ram: number, scratch: string): Promise<void> {
  if (FILL_OPTION_AVAILABLE) return;
  const firstByte = async (page: number) => {
    await qmp.execute('pmemsave', { val: page * PAGE, size: 1, filename: scratch });
    return readFileSync(scratch)[0];
  };
  const last = ram / PAGE - 1;
  try {
    await qmp.execute('cont');
    await waitUntil(FILL_TIMEOUT_MS, 'the ab workload to cover every page', async () => (await firstByte(last)) !== 0);
    // Every 256th pass wraps a byte back to zero: stopped at that moment, go on a little.
    for (let attempt = 0; ; attempt++) {
      await qmp.execute('stop');
      if ((await firstByte(0)) !== 0 && (await firstByte(last)) !== 0) return;
      if (attempt === 20) throw new Error('the ab workload kept stopping with a zero page');
      await qmp.execute('cont');
      await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    rmSync(scratch, { force: true });
  }
}
