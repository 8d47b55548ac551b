/**
 * The `block-bitmap-mapping` parameter: QEMU's aliasing of block nodes and
 * their dirty bitmaps for `dirty-bitmaps` migration. livemig guests have no
 * block nodes, so the mapping is only stored, checked and reported, as QEMU
 * checks it (check_dirty_bitmap_mig_alias_map: the mapping built in both
 * directions must be one-to-one, with names within QEMU's lengths).
 */
import { qapi } from '../../protocols/qmp/schema.js';

export interface BitmapMigrationBitmapAlias {
  name: string;
  alias: string;
  transform?: { persistent?: boolean };
}

export interface BitmapMigrationNodeAlias {
  'node-name': string;
  alias: string;
  bitmaps: BitmapMigrationBitmapAlias[];
}

export const BLOCK_BITMAP_MAPPING_SCHEMA = qapi.array(
  qapi.object({
    'node-name': qapi.str,
    alias: qapi.str,
    bitmaps: qapi.array(
      qapi.object({
        name: qapi.str,
        alias: qapi.str,
        transform: qapi.optional(qapi.object({ persistent: qapi.optional(qapi.bool) })),
      }),
    ),
  }),
);

/** Block node names are at most 31 bytes (BlockDriverState.node_name[32]). */
const MAX_NODE_NAME_BYTES = 31;
/** BDRV_BITMAP_MAX_NAME_SIZE */
const MAX_BITMAP_NAME_BYTES = 1023;
/** Aliases travel with a one-byte length. */
const MAX_ALIAS_BYTES = 255;

/** QEMU's id_wellformed: a letter, then letters, digits, '-', '.' or '_'. */
const WELL_FORMED_ID = /^[A-Za-z][A-Za-z0-9._-]*$/;

const bytes = (text: string) => Buffer.byteLength(text, 'utf8');

/** Why the mapping is invalid (QEMU's text, without the "Invalid mapping" prefix), or null. */
export function blockBitmapMappingError(mapping: readonly BitmapMigrationNodeAlias[]): string | null {
  return mappingError(mapping, true) ?? mappingError(mapping, false);
}

/** One direction of construct_alias_map: names to aliases (outgoing) or aliases to names (incoming). */
function mappingError(mapping: readonly BitmapMigrationNodeAlias[], nameToAlias: boolean): string | null {
  const nodes = new Set<string>();
  for (const node of mapping) {
    if (!WELL_FORMED_ID.test(node.alias)) return `The node alias '${node.alias}' is not well-formed`;
    if (bytes(node.alias) > MAX_ALIAS_BYTES) {
      return `The node alias '${node.alias}' is longer than ${MAX_ALIAS_BYTES} bytes`;
    }
    if (bytes(node['node-name']) > MAX_NODE_NAME_BYTES) {
      return `The node name '${node['node-name']}' is longer than ${MAX_NODE_NAME_BYTES} bytes`;
    }
    const nodeKey = nameToAlias ? node['node-name'] : node.alias;
    if (nodes.has(nodeKey)) {
      return nameToAlias ? `The node name '${nodeKey}' is mapped twice` : `The node alias '${nodeKey}' is used twice`;
    }
    nodes.add(nodeKey);
    const bitmaps = new Set<string>();
    for (const bitmap of node.bitmaps) {
      if (bytes(bitmap.alias) > MAX_ALIAS_BYTES) {
        return `The bitmap alias '${bitmap.alias}' is longer than ${MAX_ALIAS_BYTES} bytes`;
      }
      if (bytes(bitmap.name) > MAX_BITMAP_NAME_BYTES) {
        return `The bitmap name '${bitmap.name}' is longer than ${MAX_BITMAP_NAME_BYTES} bytes`;
      }
      const bitmapKey = nameToAlias ? bitmap.name : bitmap.alias;
      if (bitmaps.has(bitmapKey)) {
        return nameToAlias
          ? `The bitmap '${node['node-name']}'/'${bitmapKey}' is mapped twice`
          : `The bitmap alias '${node.alias}'/'${bitmapKey}' is used twice`;
      }
      bitmaps.add(bitmapKey);
    }
  }
  return null;
}
