/**
 * The project's import layering as dependency-cruiser rules, and a cruise
 * of the source folders against them. One place to read the structure the
 * README's layout section describes:
 *
 *   tools/ > actors/ > { protocols/, machines/ }
 *
 * with no upward import at any level (no cycle between the folders of one
 * folder) and no cycle between files; inside protocols/, a protocol's
 * folder imports only itself and the shared wire concepts.
 */
import type { ICruiseResult, IForbiddenRuleType, IViolation } from 'dependency-cruiser';

/** The folders whose files make up the graph (spec/, docs/ and node_modules/ are not in it). */
export const SOURCE_FOLDERS = ['machines', 'actors', 'protocols', 'tools'];

/** The folders under protocols/ that hold wire concepts several protocols share; every other one is a protocol's own. */
export const SHARED_PROTOCOL_FOLDERS = ['hello', 'page-runs', 'message-schema', 'pull-decoder', 'tls'];

const shared = `(${SHARED_PROTOCOL_FOLDERS.join('|')})`;

export const LAYERING_RULES: IForbiddenRuleType[] = [
  {
    name: 'no-file-cycle',
    comment: 'No import cycle between files.',
    severity: 'error',
    from: {},
    to: { circular: true },
  },
  {
    name: 'no-upward-import',
    comment: 'No cycle between the folders of one folder: each folder level is layered, whatever its order.',
    severity: 'error',
    scope: 'folder',
    from: {},
    to: { circular: true },
  },
  {
    name: 'tools-on-top',
    comment: 'Nothing below tools/ imports it.',
    severity: 'error',
    from: { path: '^(actors|protocols|machines)/' },
    to: { path: '^tools/' },
  },
  {
    name: 'actors-over-protocols-and-machines',
    comment: 'protocols/ and machines/ import nothing above them, nor each other.',
    severity: 'error',
    from: { path: '^(protocols|machines)/' },
    to: { path: '^(actors|protocols|machines)/', pathNot: '^$1/' },
  },
  {
    name: 'protocols-apart',
    comment: `A protocol's folder imports only itself, the shared folders (${SHARED_PROTOCOL_FOLDERS.join(', ')}) and files directly in protocols/.`,
    severity: 'error',
    from: { path: '^protocols/([^/]+)/', pathNot: `^protocols/${shared}/` },
    to: { path: '^protocols/[^/]+/', pathNot: ['^protocols/$1/', `^protocols/${shared}/`] },
  },
  {
    name: 'no-unresolvable',
    comment: 'Every relative import resolves: an unresolved one would hide its arrow from the other rules.',
    severity: 'error',
    from: {},
    to: { couldNotResolve: true, path: '^[.]' },
  },
];

/**
 * Cruises `folders` of the tree at `root` against LAYERING_RULES.
 * `import type` counts as an import (tsPreCompilationDeps), and an import
 * of './x.js' resolves to './x.ts' first, as tsc does under NodeNext.
 */
export async function cruiseLayering(root: string, folders: readonly string[] = SOURCE_FOLDERS): Promise<ICruiseResult> {
  // Imported when used: the package has only an `import` entry, and test modules may be loaded with require.
  const { cruise } = await import('dependency-cruiser');
  const { output } = await cruise(
    [...folders],
    {
      baseDir: root,
      tsPreCompilationDeps: true,
      doNotFollow: { path: '(^|/)node_modules/' },
      exclude: { path: '^(node_modules|spec|docs)/' },
      validate: true,
      ruleSet: { forbidden: LAYERING_RULES },
    },
    { extensionAlias: { '.js': ['.ts', '.js'] }, bustTheCache: true },
  );
  if (typeof output === 'string') throw new Error('dependency-cruiser returned a report, not a cruise result');
  return output;
}

/** One line per violation: the rule, and the import (or the folders, or the cycle) that breaks it. */
export function describeViolations(violations: readonly IViolation[]): string {
  return violations
    .map((v) => {
      const cycle = v.cycle?.map((step) => step.name).join(' -> ');
      return `[${v.rule.name}] ${v.from} -> ${v.to}${cycle ? ` (cycle: ${v.from} -> ${cycle})` : ''}`;
    })
    .join('\n');
}
