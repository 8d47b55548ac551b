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
 */
export const NET_OUT_MAGIC = 0x4c4d4e4f; // "LMNO"
export const NET_OUT_HELLO_BYTES = 8;
