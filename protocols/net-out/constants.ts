/**
 * The guest's network link to the outside (livemig's stand-in for a tap
 * device and the peer behind it), over a unix or tcp socket:
 *
 *   instance → peer: NET_OUT_MAGIC (u32), then packets of 16 bytes each;
 *   peer → instance: NET_OUT_MAGIC (u32), then the next sequence number it
 *   wants (u32), once, at the start.
 *
 * The peer's "next" is what a TCP peer's acknowledgement number is: a guest
 * that takes over the link (a migration's destination, a COLO secondary
 * after failover) sends nothing the peer already has.
 *
 * A 16-byte frame whose first two u32s are NET_OUT_ANNOUNCE_SEQ and
 * NET_OUT_ANNOUNCE is not a guest packet but a self-announcement (QEMU's
 * RARP after a migration, or on announce-self; actors/net/announce.ts); its
 * last 8 bytes are the sender's clock, ms since the epoch (u64). It has no
 * place in the sequence: never skipped, never sent again. (A guest packet
 * numbered 0, after 2^32 of them, is told apart by its second field, a page
 * position far below NET_OUT_ANNOUNCE.)
 */
export const NET_OUT_MAGIC = 0x4c4d4e4f; // "LMNO"
export const NET_OUT_HELLO_BYTES = 8;
/** The sequence number an announcement frame carries (the guest's numbers start at 1). */
export const NET_OUT_ANNOUNCE_SEQ = 0;
export const NET_OUT_ANNOUNCE = 0x52415250; // "RARP"
