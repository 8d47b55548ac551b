/**
 * A model of precopy's iteration (QEMU's migration_iteration_run, livemig's
 * SourceMigration.iterate) that says whether it reaches the switchover, in
 * how many passes and with what downtime, from figures measured beforehand.
 * Pure arithmetic on expected values; no I/O.
 *
 * What it assumes:
 * - The guest writes `dirtyPagesRate` pages a second, each one a page of its
 *   working set picked uniformly at random (the `random` workload): over t
 *   seconds a page escapes every write with probability e^(-rate·t/ws), so
 *   the pages dirtied saturate at the working set. A sequential writer
 *   (`ab`) dirties min(rate·t, ws); the two agree while rate·t ≪ ws.
 * - Pages go at `bandwidthPagesPerSecond` (max-bandwidth, or what a running
 *   migration measures), every page holding data: zero pages would make the
 *   first pass shorter than modelled.
 * - A pass sends until what is pending falls to the threshold size
 *   (switchover bandwidth × downtime limit), then a dirty sync adds the
 *   pages written meanwhile to those still pending; the switchover comes at
 *   the first sync that finds less pending than the threshold, though not
 *   at the one ending the first pass: the pass after it sends everything
 *   pending, and the sync after that may decide (livemig's rule, see
 *   SourceMigration.iterate; QEMU decides at once). Batches go
 *   until at most the threshold is pending, half a batch below it on
 *   average. Near the threshold a pass is one batch (a rate window's worth,
 *   or livemig's largest frame): the migration syncs again after every
 *   batch, so what decides is whether the guest dirties new pages slower
 *   than they go.
 * - The downtime is the last pending pages over the switchover bandwidth
 *   (QEMU's expected-downtime); the device state is small beside it.
 * - With xbzrle, a page sent again travels `resendEncodingRate` times
 *   smaller (it hits the cache); pages of the bulk stage never do.
 */

/** Beyond this many passes a precopy is taken not to converge (it would take too long to matter). */
export const MAX_PASSES = 1000;

export interface PrecopyInput {
  /** Pages pending when the prediction starts: all of RAM before a migration, the remaining ones during one. */
  pendingPages: number;
  /** Whether the pending pages were never sent (the first pass, QEMU's bulk stage): xbzrle's cache cannot hold them yet. */
  bulkStage: boolean;
  /** Whether, past the bulk stage, the pending pages are the first pass of dirty ones, which goes whole before the next sync. */
  firstDirtyPass?: boolean;
  /** The pages the guest writes over. */
  workingSetPages: number;
  /** Page writes per second, over the working set. */
  dirtyPagesRate: number;
  /** Pages per second sent in precopy. */
  bandwidthPagesPerSecond: number;
  /** Pages per second the switchover may count on (avail-switchover-bandwidth, else the same as in precopy). */
  switchoverPagesPerSecond: number;
  downtimeLimitMs: number;
  /** Pages sent between two looks at the threshold. */
  batchPages: number;
  /** xbzrle: how many times smaller a page sent again travels; 1 without. */
  resendEncodingRate: number;
}

export interface PrecopyPrediction {
  converges: boolean;
  /** Passes until the switchover, or (not converging) until the pending pages stopped shrinking. */
  passes: number;
  /** ms, when it converges. */
  expectedDowntimeMs?: number;
  /** ms of precopy until the switchover, when it converges. */
  precopyTimeMs?: number;
  /** Not converging: the pages each dirty sync still finds pending, where precopy stalls. */
  stallPages?: number;
}

/** Pending pages at a dirty sync: those of the working set, and the others (left from the first pass only). */
interface Pending {
  inSet: number;
  outside: number;
}

/** One pass from a dirty sync to the next: what the next one finds pending, how long the pass took, and the threshold it is checked against. */
function runPass(input: PrecopyInput, at: Pending, pass: number, whole = false): { next: Pending; seconds: number; threshold: number; switchover: number } {
  const ws = Math.max(1, input.workingSetPages);
  const encoding = input.bulkStage && pass === 1 ? 1 : input.resendEncodingRate;
  // xbzrle clears pages faster on the same wire; the threshold is the wire's bandwidth × the limit (QEMU's, livemig's).
  const bandwidth = input.bandwidthPagesPerSecond * encoding;
  const switchover = input.switchoverPagesPerSecond;
  const threshold = (switchover * input.downtimeLimitMs) / 1000;
  const pending = at.inSet + at.outside;
  // Batches go until what is pending is at most the threshold: on average half a batch below it.
  const sent = whole ? pending : pending <= threshold ? 0 : Math.min(pending, Math.max(input.batchPages, pending - threshold + input.batchPages / 2));
  const seconds = sent / bandwidth;
  const sentInSet = pending > 0 ? (sent * at.inSet) / pending : 0;
  const written = (input.dirtyPagesRate * seconds) / ws;
  // A clean page is written during the pass; a page sent at a uniform time during it is written after.
  const cleanDirtied = 1 - Math.exp(-written);
  const sentDirtied = written > 0 ? 1 - cleanDirtied / written : 0;
  const inSet = at.inSet - sentInSet + sentInSet * sentDirtied + (ws - at.inSet) * cleanDirtied;
  return { next: { inSet, outside: at.outside - (sent - sentInSet) }, seconds, threshold, switchover };
}

function startingPending(input: PrecopyInput): Pending {
  const inSet = Math.min(input.pendingPages, Math.max(1, input.workingSetPages));
  return { inSet, outside: input.pendingPages - inSet };
}

/** The expected course of precopy, pass by pass, until the switchover or a stall. */
export function predictPrecopy(input: PrecopyInput): PrecopyPrediction {
  let at = startingPending(input);
  let elapsed = 0;
  for (let pass = 1; pass <= MAX_PASSES; pass++) {
    const pending = at.inSet + at.outside;
    const wholePass = input.bulkStage ? pass === 2 : input.firstDirtyPass === true && pass === 1;
    const { next, seconds, threshold, switchover } = runPass(input, at, pass, wholePass);
    at = next;
    elapsed += seconds;
    const found = at.inSet + at.outside;
    const decides = !(input.bulkStage && pass === 1);
    // Less than half a page pending is none: QEMU switches over on nothing pending even with a downtime limit of 0.
    if ((decides && found < threshold) || found < 0.5) {
      return { converges: true, passes: pass, expectedDowntimeMs: (found / switchover) * 1000, precopyTimeMs: elapsed * 1000 };
    }
    // Once every page is a resent one the pending pages follow an increasing map: no shrink now, none later.
    if ((pass > 1 || !input.bulkStage) && found >= pending) return { converges: false, passes: pass, stallPages: found };
  }
  return { converges: false, passes: MAX_PASSES, stallPages: at.inSet + at.outside };
}

/** Pages the dirty sync after the first pass finds pending: what a switch to postcopy then leaves to send. */
export function pendingAfterFirstPass(input: PrecopyInput): number {
  const { next } = runPass(input, startingPending(input), 1);
  return next.inSet + next.outside;
}

/** The highest dirty page rate at which precopy still converges (0 if none does), to within a page a second. */
export function maxConvergingRate(input: PrecopyInput): number {
  if (predictPrecopy(input).converges) return input.dirtyPagesRate;
  let low = 0;
  let high = input.dirtyPagesRate;
  if (!predictPrecopy({ ...input, dirtyPagesRate: low }).converges) return 0;
  while (high - low > 1) {
    const mid = (low + high) / 2;
    if (predictPrecopy({ ...input, dirtyPagesRate: mid }).converges) low = mid;
    else high = mid;
  }
  return low;
}

/** The least encoding rate (at most `limit`) at which resent pages make precopy converge; undefined if none does. */
export function minConvergingEncodingRate(input: PrecopyInput, limit: number): number | undefined {
  if (predictPrecopy(input).converges) return input.resendEncodingRate;
  if (!predictPrecopy({ ...input, resendEncodingRate: limit }).converges) return undefined;
  let low = input.resendEncodingRate;
  let high = limit;
  while (high - low > 0.01) {
    const mid = (low + high) / 2;
    if (predictPrecopy({ ...input, resendEncodingRate: mid }).converges) high = mid;
    else low = mid;
  }
  return high;
}

/**
 * A dirty-rate measurement counts distinct pages (calc-dirty-rate's
 * dirty-bitmap and dirty-ring modes): `distinctPages` over `seconds`. The
 * page writes per second over a working set of `workingSetPages` that
 * leave that many distinct pages; a working set measured full gives no
 * more than its own figure.
 */
export function writeRateOfDistinct(distinctPages: number, seconds: number, workingSetPages: number): number {
  const share = distinctPages / Math.max(1, workingSetPages);
  if (share >= 1) return distinctPages / seconds;
  return (-Math.log(1 - share) * workingSetPages) / seconds;
}
