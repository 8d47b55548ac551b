/**
 * How long multifd channels have to connect, on either side: the source
 * waiting for the destination to say where they listen, the destination
 * waiting for every channel once the stream header is in.
 */
export const MULTIFD_CONNECT_TIMEOUT_MS = 30_000;
