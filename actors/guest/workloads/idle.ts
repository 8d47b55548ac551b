import type { Workload } from './workload.js';

/** A guest that does nothing: its vCPUs just sleep until stopped. */
export function idleWorkload(): Workload {
  return {
    step(sleep) {
      sleep(50);
      return 0;
    },
    resumed() {},
  };
}
