/** QEMU's default max-bandwidth (128 MiB/s) would cap a loopback migration: raise it far above. */
export const UNLIMITED_BANDWIDTH = 100n << 30n;
