/**
 * The shape of every protocol's error: a class of its own, so callers can
 * test `instanceof`, and a `code` from the protocol's list, so they match on
 * the code rather than the text.
 *
 * @example
 * export class StreamError extends CodedError<StreamErrorCode> {
 *   override readonly name = 'StreamError';
 * }
 */
export abstract class CodedError<Code extends string> extends Error {
  readonly code: Code;

  constructor(code: Code, message: string) {
    super(message);
    this.code = code;
  }
}
