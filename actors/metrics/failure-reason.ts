/**
 * Why a migration failed, as a bounded class for a metric label: the
 * error-desc text is free (it names addresses, sizes, peers' messages), so
 * it never becomes a label itself; every text falls in one of these.
 */

export const FAILURE_REASONS = ['peer', 'tls', 'connect', 'timeout', 'channel', 'config', 'stream', 'other'] as const;

export type FailureReason = (typeof FAILURE_REASONS)[number];

/**
 * First match wins, so the more telling class goes first: a destination's
 * own reason (SHUT with an error) over the channel that broke with it, TLS
 * over the connection it failed on, a connect that timed out over timeouts.
 */
const CLASSES: readonly [FailureReason, RegExp][] = [
  // The other side refused the stream and said why (the return path's SHUT).
  ['peer', /^Sibling indicated error/],
  // Credentials, handshake, peer verification, authorisation.
  ['tls', /\bTLS\b|certificate|handshake|x509|\bPSK\b|tls-creds|tls-authz|authoriz/i],
  // No channel could be opened: nothing listens, no route, a missing socket file, an address taken.
  ['connect', /^Failed to connect to|ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|EADDRINUSE|EADDRNOTAVAIL|ENOENT/],
  // A wait ran out: a stalled channel, a peer that never answered.
  ['timeout', /stalled|timed out|ETIMEDOUT|within \d+ ?(?:ms|s)\b/],
  // An open channel broke: reset, closed, a write that failed.
  ['channel', /ECONNRESET|EPIPE|migration channel|return path (?:broke|was closed)|closed the return path|socket hang up|connection was closed/i],
  // The two sides or the URI cannot do this migration: capabilities, guest layout, UUID, blockers.
  ['config', /mismatch|[Cc]apability|requires|needs |cannot carry|not supported|UUID|blocker|non-migratable/],
  // Bytes that are not a migration stream or return path livemig reads: bad magic, version, truncated, unexpected.
  ['stream', /stream|magic|unexpected|truncated|[Uu]nsupported|malformed|return-path message|return path|decode|invalid/i],
];

/** The class of a failure's error-desc (a destination's "load of migration failed: " prefix is looked through). */
export function failureReason(errorDesc: string | null | undefined): FailureReason {
  const text = (errorDesc ?? '').replace(/^load of migration failed: /, '');
  for (const [reason, pattern] of CLASSES) if (pattern.test(text)) return reason;
  return 'other';
}
