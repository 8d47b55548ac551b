/**
 * The guest's network card, transmit side: vCPU 0's workload sends packets
 * into a ring in shared memory, the host drains the ring and hands each
 * packet to whoever carries the guest's output (actors/net). A packet is
 * a pure function of the guest's state (which page the workload reached,
 * the byte it wrote there, a running hash of every earlier packet), so two
 * copies of a guest started from the same state send the same packets
 * until their memory differs: what COLO's colo-compare relies on.
 *
 * Packet, 16 bytes, big-endian u32s: seq, page position, byte written,
 * chain (a hash over the previous chain and this packet's fields).
 * Sequence numbers start at 1; the NIC's device state is the last sequence
 * number and chain, so a guest that is migrated or checkpointed goes on
 * from the same point.
 */
export const NIC_PACKET_BYTES = 16;
/** Packets the ring holds; a full ring makes vCPU 0 wait, as a NIC with no free descriptor does. */
export const NIC_RING_SLOTS = 4096;

const HEAD = 0; // packets taken by the host (mod 2^32)
const TAIL = 1; // packets written by the guest (mod 2^32)
const SEQ = 2; // the last packet's sequence number
const CHAIN = 3; // the last packet's chain value
const HEADER_INTS = 4;
const SLOT_INTS = NIC_PACKET_BYTES / 4;

export function allocateNicRing(): SharedArrayBuffer {
  return new SharedArrayBuffer((HEADER_INTS + NIC_RING_SLOTS * SLOT_INTS) * 4);
}

/** The NIC's migratable state. */
export interface NicState {
  seq: number;
  chain: number;
}

/** One round of a 32-bit FNV-1a style mix: deterministic, cheap, and any differing field changes every later chain. */
function mix(h: number, x: number): number {
  for (let i = 0; i < 4; i++) {
    h = Math.imul(h ^ ((x >>> (i * 8)) & 0xff), 0x01000193);
  }
  return h >>> 0;
}

/** The chain value of packet `seq` that follows a packet whose chain was `chain` (0 before the first). */
export function nextChain(chain: number, seq: number, pos: number, value: number): number {
  return mix(mix(mix(chain, seq), pos), value);
}

/**
 * Whether sequence number `a` comes before `b`. Sequence numbers are u32s
 * that wrap (RFC 1982's serial number arithmetic): whichever is less than
 * 2^31 ahead of the other is the later one.
 */
export function seqBefore(a: number, b: number): boolean {
  return ((a - b) | 0) < 0;
}

/** The sequence number after `seq`, wrapping at 2^32. */
export function seqAfter(seq: number): number {
  return (seq + 1) >>> 0;
}

/** The vCPU side: used by the workload of vCPU 0 only. */
export class NicTx {
  private readonly ring: Int32Array;

  constructor(
    buffer: SharedArrayBuffer,
    /** Parks the vCPU if a stop was requested (waiting for a free slot must not hold up a stop). */
    private readonly parkIfStopping: () => void,
  ) {
    this.ring = new Int32Array(buffer);
  }

  /**
   * Waits until the ring has a free slot; true if it had to wait. Called
   * before the guest changes anything for the packet, so a stop while
   * waiting parks the vCPU with no half-done packet: the saved state either
   * has the packet or not. A vCPU that waited may have been parked, and its
   * registers replaced (a COLO checkpoint loaded): it must read them again.
   */
  reserve(): boolean {
    const ring = this.ring;
    for (let waited = false; ; waited = true) {
      const head = Atomics.load(ring, HEAD);
      if (((Atomics.load(ring, TAIL) - head) >>> 0) < NIC_RING_SLOTS) return waited;
      this.parkIfStopping();
      Atomics.wait(ring, HEAD, head, 20);
    }
  }

  /** Sends one packet; reserve() must have found a slot. */
  send(pos: number, value: number): void {
    const ring = this.ring;
    const seq = seqAfter(ring[SEQ]! >>> 0);
    const chain = nextChain(ring[CHAIN]! >>> 0, seq, pos, value);
    const tail = Atomics.load(ring, TAIL);
    const at = HEADER_INTS + ((tail >>> 0) % NIC_RING_SLOTS) * SLOT_INTS;
    ring[at] = seq;
    ring[at + 1] = pos;
    ring[at + 2] = value;
    ring[at + 3] = chain;
    ring[SEQ] = seq;
    ring[CHAIN] = chain;
    Atomics.store(ring, TAIL, (tail + 1) | 0);
  }
}

/** The host side: drains the ring into `consumer`, and saves and loads the NIC's state. */
export class Nic {
  private readonly ring: Int32Array;
  /** Where drained packets go; the instance points it at the guest's network (actors/net). */
  consumer: (packet: Uint8Array) => void = () => {};

  constructor(readonly buffer: SharedArrayBuffer) {
    this.ring = new Int32Array(buffer);
  }

  /** Hands every packet in the ring to the consumer, oldest first; returns how many. */
  flush(): number {
    const ring = this.ring;
    const tail = Atomics.load(ring, TAIL);
    let head = Atomics.load(ring, HEAD);
    let n = 0;
    while (head !== tail) {
      const at = HEADER_INTS + ((head >>> 0) % NIC_RING_SLOTS) * SLOT_INTS;
      const packet = Buffer.allocUnsafe(NIC_PACKET_BYTES);
      for (let i = 0; i < SLOT_INTS; i++) packet.writeUInt32BE(ring[at + i]! >>> 0, i * 4);
      head = (head + 1) | 0;
      Atomics.store(ring, HEAD, head);
      Atomics.notify(ring, HEAD);
      this.consumer(packet);
      n++;
    }
    return n;
  }

  /** Drops what the ring holds (a secondary rolling back throws its own timeline's packets away). */
  discard(): void {
    Atomics.store(this.ring, HEAD, Atomics.load(this.ring, TAIL));
    Atomics.notify(this.ring, HEAD);
  }

  state(): NicState {
    return { seq: this.ring[SEQ]! >>> 0, chain: this.ring[CHAIN]! >>> 0 };
  }

  /** Loads a saved state into a stopped guest's NIC (its ring must have been flushed or discarded). */
  load(state: NicState): void {
    if (Atomics.load(this.ring, HEAD) !== Atomics.load(this.ring, TAIL)) throw new Error('the NIC still holds packets not sent');
    this.ring[SEQ] = state.seq;
    this.ring[CHAIN] = state.chain;
  }

  /** A packet's sequence number (the first field). */
  static seqOf(packet: Uint8Array): number {
    return ((packet[0]! << 24) | (packet[1]! << 16) | (packet[2]! << 8) | packet[3]!) >>> 0;
  }
}
