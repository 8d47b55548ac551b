/**
 * The return path's wire constants (destination → source, on the main
 * connection's reverse direction).
 *
 * Each message: u16 type, u16 body length (big-endian), then a msgpack map
 * of at most 512 bytes checked against the type's schema. RECV_BITMAP is
 * followed by the bitmap blob: u64 length in bytes, the bytes, then the u64
 * end marker RECV_BITMAP_END_MARK.
 */

export const RP_HEADER_SIZE = 4;
/** Like QEMU's return-path buffer: a longer body is an invalid message. */
export const RP_MAX_BODY = 512;

/** QEMU's MIG_RP_MSG_* numbering (0 is INVALID). */
export const ReturnPathType = {
  SHUT: 1,
  PONG: 2,
  REQ_PAGES_ID: 3,
  REQ_PAGES: 4,
  RECV_BITMAP: 5,
  RESUME_ACK: 6,
  SWITCHOVER_ACK: 7,
  /** livemig: where the destination's multifd channels listen (not in QEMU, whose channels share one port). */
  MULTIFD_CHANNELS: 0x100,
  /** livemig: where the destination's postcopy-preempt thread listens (in QEMU the main listener takes it). */
  PREEMPT_CHANNEL: 0x101,
  /** livemig: a COLO checkpoint step from the secondary (QEMU writes a bare be32 on the reverse channel). */
  COLO_MESSAGE: 0x102,
  /** livemig: the secondary's output packets for the primary's colo-compare. */
  COLO_PACKETS: 0x103,
} as const;
export type ReturnPathType = (typeof ReturnPathType)[keyof typeof ReturnPathType];

export const BITMAP_LENGTH_SIZE = 8;
export const BITMAP_END_MARK_SIZE = 8;
export const RECV_BITMAP_END_MARK = 0x0123456789abcdefn;

/** The only value a RESUME_ACK may carry (QEMU's MIGRATION_RESUME_ACK_VALUE). */
export const RESUME_ACK_VALUE = 1;
