import { readFileSync } from 'node:fs';

/**
 * The QEMU version livemig's monitor reports: its behaviour contract is
 * QEMU 8.2's, so a client that branches on the greeting's version (as
 * libvirt does) takes the 8.2 paths. livemig's own version goes in the
 * greeting's `package`, where QEMU puts its distribution's package string.
 */
export const QEMU_COMPAT_VERSION = { micro: 0, minor: 2, major: 8 } as const;

/** QMPCapability values; QEMU offers `oob` on monitors that can run out-of-band commands. */
export const QMP_CAPABILITIES = ['oob'] as const;
export type QmpCapability = (typeof QMP_CAPABILITIES)[number];

/**
 * In-band requests a session holds before it stops reading its socket
 * (QEMU's QMP_REQ_QUEUE_LEN_MAX), so a flooding client is slowed, not buffered.
 */
export const REQUEST_QUEUE_MAX = 8;

/** Unread output a session may pile up (a client that never reads) before it is dropped. */
export const MAX_PENDING_OUTPUT_BYTES = 16 << 20;

let packageString: string | undefined;

/** "livemig X.Y.Z", read once from the project's package.json. */
export function livemigPackage(): string {
  packageString ??= `livemig ${(JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version}`;
  return packageString;
}

/**
 * Input a session may send without one message coming of it (errors
 * included: each resynchronises, as QEMU's do) before it is dropped: four
 * times QEMU's token bound. Memory stays bounded by the JSON limits either
 * way; this frees the connection of a client that only ever floods.
 */
export const MAX_INPUT_WITHOUT_MESSAGE_BYTES = 256 << 20;
