/**
 * Why a stream could not be read to its end, and where: the byte offset of
 * the field that is wrong (or of the end, for a stream cut short) and what
 * the format has there.
 */
import { CodedError } from '../../protocols/coded-error.js';
import type { StreamErrorCode } from '../../protocols/stream/errors.js';

export type AnalyzeErrorCode =
  /** The decoder's own codes (protocols/stream/errors.ts). */
  | StreamErrorCode
  /** The stream ends between two frames, but before its EOF. */
  | 'NO_EOF'
  /** The hello opens a multifd or preempt channel: analyze reads the main one. */
  | 'NOT_MAIN_CHANNEL'
  /** A stream header this build cannot follow (its page size). */
  | 'BAD_HEADER'
  /** The postcopy package does not hold a stream of its own. */
  | 'BAD_PACKAGE'
  /** The file could not be read. */
  | 'READ_FAILED';

export interface ErrorPlace {
  /** Byte offset in the file of the field found wrong (or of the end of the file). */
  offset: number;
  /** 0-based index of the frame it is in (undefined in the hello). */
  frame?: number;
  /** Where that frame starts. */
  frameOffset?: number;
  /** What the format has at `offset`. */
  expected: string;
}

export class AnalyzeError extends CodedError<AnalyzeErrorCode> {
  override readonly name = 'AnalyzeError';

  constructor(code: AnalyzeErrorCode, message: string, readonly place: ErrorPlace) {
    super(code, message);
  }
}

/** What a well-formed stream has where the decoder found `code`. */
export function expectedFor(code: AnalyzeErrorCode, inFrameHeader: boolean): string {
  switch (code) {
    case 'BAD_MAGIC':
      return "the channel hello, starting with the magic 0x4c564d47 ('LVMG')";
    case 'BAD_VERSION':
      return 'the channel hello with stream version 1';
    case 'BAD_HELLO':
      return 'the channel hello: channel kind 0-2, channel id below the count, reserved bytes zero';
    case 'NOT_MAIN_CHANNEL':
      return "the main channel's hello (channel kind 0): multifd and preempt channels carry pages only";
    case 'BAD_FRAME':
    case 'BAD_FRAME_TYPE':
      return 'a frame header: type 1 (CONTROL), 2 (PAGES) or 3 (XBZRLE), flags and reserved bytes zero, then the body length';
    case 'FRAME_TOO_LARGE':
      return 'a frame header whose body length is within its type\'s limit (CONTROL 16 MiB, PAGES and XBZRLE 8 MiB of pages)';
    case 'BAD_MESSAGE':
    case 'UNKNOWN_MESSAGE':
      return "a CONTROL frame's body: one msgpack map, a control message of a known type matching its schema";
    case 'BAD_PAGES':
      return inFrameHeader
        ? 'a frame header; a PAGES frame comes after the stream header, its body long enough for one run'
        : "a PAGES frame's sub-header and runs, within the RAM blocks the stream header lists";
    case 'BAD_XBZRLE':
      return inFrameHeader
        ? 'a frame header; an XBZRLE frame comes only in a stream whose header turns the xbzrle capability on'
        : "an XBZRLE frame's pages: each within its block, with a delta of at most a page that rebuilds it, filling the frame exactly";
    case 'BAD_HEADER':
      return 'a stream header with page size 4096';
    case 'BAD_PACKAGE':
      return 'a postcopy package: whole frames, control messages only';
    case 'TRUNCATED':
      return 'the rest of that frame: the file ends inside it';
    case 'NO_EOF':
      return 'another frame: a stream ends with an EOF control message';
    case 'DECODER_CLOSED':
    case 'READ_FAILED':
      return 'more of the file';
  }
}
