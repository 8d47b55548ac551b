/**
 * Every decoder that takes bytes from a peer or a client, as a fuzz target.
 * Page runs (protocols/page-runs) are the PAGES frames' and multifd packets'
 * descriptors, fuzzed through those two.
 */
import type { FuzzTarget } from './fuzz-target.js';
import { helloTarget } from './targets/hello.js';
import { multifdCompressionTarget } from './targets/multifd-compression.js';
import { multifdTarget } from './targets/multifd.js';
import { qmpArgumentsTarget } from './targets/qmp-arguments.js';
import { qmpJsonTarget } from './targets/qmp-json.js';
import { returnPathTarget } from './targets/return-path.js';
import { streamTarget } from './targets/stream.js';
import { uriTarget } from './targets/uri.js';
import { xbzrleTarget } from './targets/xbzrle.js';

export const FUZZ_TARGETS: readonly FuzzTarget[] = [
  helloTarget,
  streamTarget,
  multifdTarget,
  multifdCompressionTarget,
  returnPathTarget,
  xbzrleTarget,
  qmpJsonTarget,
  qmpArgumentsTarget,
  uriTarget,
];
