/** A scenario the system under test cannot run yet (a capability it refuses): reported, not failed. */
export class NotAvailable extends Error {
  readonly code = 'NOT_AVAILABLE';
}
