/**
 * The convergence prediction as a client asks for it before a migration:
 * the guest's dirty rate measured (calc-dirty-rate, dirty-bitmap mode:
 * every distinct page written), then `__org.livemig_query-convergence`
 * with the parameters set on the source; and the prediction in a few
 * lines, as `livemig migrate` prints it.
 */
import type { ConvergencePrediction } from '../actors/convergence/convergence-prediction.js';
import type { QmpClient } from '../protocols/qmp/client.js';
import { CONVERGENCE_COMMAND } from '../protocols/qmp/livemig-extensions.js';
import { waitUntil } from './bench/wait-until.js';

/** How long `livemig migrate` measures the guest's dirty rate before it predicts. */
export const PREDICT_CALC_TIME_MS = 500;
/** Beyond the calc time: a busy machine may finish the measurement late. */
const MEASURE_SLACK_MS = 5000;

/** Measures the source guest's dirty rate over `calcTimeMs`, then asks for the prediction. */
export async function measureAndPredict(
  src: QmpClient,
  options: { calcTimeMs: number; workingSet?: number },
): Promise<ConvergencePrediction> {
  await src.execute('calc-dirty-rate', { 'calc-time': options.calcTimeMs, 'calc-time-unit': 'millisecond', mode: 'dirty-bitmap' });
  await waitUntil(options.calcTimeMs + MEASURE_SLACK_MS, 'the dirty rate to be measured', async () =>
    (await src.execute<{ status: string }>('query-dirty-rate')).status === 'measured');
  return src.execute<ConvergencePrediction>(CONVERGENCE_COMMAND, options.workingSet === undefined ? {} : { 'working-set': options.workingSet });
}

const mib = (bytes: number) => `${(bytes / (1 << 20)).toFixed(1)} MiB`;

/** The prediction in a few lines: the outlook, and when precopy would not converge, what would make it. */
export function formatPrediction(p: ConvergencePrediction): string {
  const figures = `dirty rate ${p['dirty-rate']} MB/s, ${mib(p.bandwidth)}/s ${p['bandwidth-source'] === 'max-bandwidth' ? 'max-bandwidth' : 'bandwidth'}, downtime-limit ${p['downtime-limit']} ms`;
  if (p.converges) {
    return `prediction: precopy converges in ${p.passes} passes, expected downtime ${p['expected-downtime']} ms (${figures})`;
  }
  const l = p.levers;
  const levers = [
    l['auto-converge'].converges ? `auto-converge (throttle reaching ${l['auto-converge']['cpu-throttle-percentage']}%)` : '',
    l['dirty-limit']['vcpu-dirty-limit'] !== undefined ? `dirty-limit with vcpu-dirty-limit ≤ ${l['dirty-limit']['vcpu-dirty-limit']} MB/s` : '',
    l.xbzrle['encoding-rate'] !== undefined ? `xbzrle if resent pages encode ${l.xbzrle['encoding-rate']}× smaller (cache ≥ ${mib(l.xbzrle['xbzrle-cache-size'])})` : '',
    `postcopy-ram (${mib(l['postcopy-ram']['postcopy-bytes'])} left after the first pass)`,
  ].filter(Boolean);
  return [
    `prediction: precopy does not converge: ${mib(p['stall-size']!)} stay pending at each dirty sync, over the ${mib(p['threshold-size'])} threshold (${figures})`,
    `prediction: it would converge with ${levers.join('; or ')}`,
  ].join('\n');
}
