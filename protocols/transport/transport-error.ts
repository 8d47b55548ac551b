/** A transport that could not open, carry or finish a migration channel, and why (the migration's error-desc). */
export class TransportError extends Error {
  constructor(readonly code: 'CONNECT' | 'IO' | 'EXEC_STATUS' | 'BAD_FD', message: string) {
    super(message);
  }
}
