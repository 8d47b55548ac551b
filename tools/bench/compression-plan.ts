/**
 * Multifd compression as both engines run it in the bench: the same method
 * at the same level, QEMU's default (1), which is livemig's too, set
 * explicitly all the same so that neither default moving changes what is
 * compared.
 */
import type { CompressionMethod } from '../../protocols/multifd/constants.js';

export const MULTIFD_COMPRESSION_LEVEL = 1;

/** migrate-set-parameters' members for `method` (QEMU's and livemig's alike). */
export function compressionParameters(method: CompressionMethod): Record<string, unknown> {
  return { 'multifd-compression': method, 'multifd-zlib-level': MULTIFD_COMPRESSION_LEVEL, 'multifd-zstd-level': MULTIFD_COMPRESSION_LEVEL };
}
