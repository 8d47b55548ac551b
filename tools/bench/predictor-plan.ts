/** What the convergence predictor's sweep runs (predictor-sweep.ts), and what it measured at each rate. */
import type { ConvergencePrediction } from '../../actors/convergence/convergence-prediction.js';

export interface PredictorSweepPlan {
  /** Page writes per second, one migration each. */
  rates: number[];
  /** Bytes the guest writes over (from 0; all of RAM holds random bytes). */
  workingSet: number;
  /** bytes/s. */
  maxBandwidth: bigint;
  /** ms. */
  downtimeLimit: number;
  /** How long calc-dirty-rate measures, ms. */
  calcTimeMs: number;
  /** Past this (ms after `migrate`) a migration still in precopy is cancelled: it did not converge. */
  boundMs: number;
}

/** One rate of the sweep: what was predicted before `migrate`, and what the migration did. */
export interface PredictorPoint {
  rate: number;
  prediction: Pick<ConvergencePrediction, 'dirty-rate' | 'dirty-pages-rate' | 'converges' | 'passes' | 'expected-downtime'>;
  /** completed within the bound. */
  converged: boolean;
  /** Passes before the switchover (dirty-sync-count less the setup's and the stop-and-copy's), when converged. */
  passes?: number;
  downtimeMs?: number;
  /** dirty-sync-count when it was cancelled, when not converged. */
  dirtySyncCount?: number;
}
