import type { GuestNetwork } from '../net/guest-network.js';
import type { ColoStatus } from './colo-status.js';

/** What COLO needs of its instance, on either side. */
export interface ColoServices {
  /** Where the guest's output packets go (COLO diverts them). */
  network: GuestNetwork;
  colo: ColoStatus;
  /** --colo-digests: every checkpoint works out its RAM digest on both sides (a test aid; it lengthens each checkpoint). */
  coloDigests: boolean;
  /** livemig's COLO_CHECKPOINT event. */
  announceColoCheckpoint(data: Record<string, string | number>): void;
}
