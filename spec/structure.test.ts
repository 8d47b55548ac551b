/**
 * The import layering (spec/support/layering-rules.ts), checked by
 * dependency-cruiser: the real tree must break no rule, and a small tree
 * with one fault per rule must trip every rule, so the check can fail.
 */
import { expect } from 'chai';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cruiseLayering, describeViolations, LAYERING_RULES } from './support/layering-rules.js';

const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Writes `files` (path → imported specifiers) under `root` as TypeScript modules. */
function writeTree(root: string, files: Record<string, string[]>): void {
  for (const [path, imports] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    const lines = imports.map((spec, i) => `import { x as x${i} } from '${spec}';`);
    writeFileSync(join(root, path), `${lines.join('\n')}\nexport const x = ${imports.length};\n`);
  }
}

describe('import layering', function () {
  this.timeout(60_000);

  it('holds on the source tree: no upward import at any level, no cycle', async () => {
    const result = await cruiseLayering(REPO_ROOT);
    expect(result.summary.totalCruised, 'the tree was read').to.be.above(150);
    expect(result.summary.totalDependenciesCruised, 'its imports were resolved').to.be.above(400);
    const violations = result.summary.violations;
    if (violations.length > 0) expect.fail(`${violations.length} layering violation(s):\n${describeViolations(violations)}`);
  });

  describe('trips each rule on a tree built to break it', () => {
    let dir: string;
    let found: string[];

    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'layering-'));
      writeTree(dir, {
        'machines/m.ts': ['../protocols/hello/h.js'],
        'protocols/hello/h.ts': [],
        'protocols/multifd/b.ts': [],
        'protocols/stream/a.ts': ['../hello/h.js', '../multifd/b.js', '../size.js'],
        'protocols/size.ts': [],
        'protocols/qmp/q.ts': ['../../actors/x/v.js'],
        'actors/x/y.ts': ['../z/w.js', '../../protocols/stream/a.js'],
        'actors/x/v.ts': [],
        'actors/z/w.ts': ['../x/v.js'],
        'actors/f/one.ts': ['./two.js'],
        'actors/f/two.ts': ['./one.js'],
        'actors/x/u.ts': ['../../tools/t.js', './missing.js'],
        'tools/t.ts': ['../actors/x/y.js'],
      });
      const result = await cruiseLayering(dir);
      found = result.summary.violations.map((v) => `${v.rule.name}: ${v.from} -> ${v.to}`);
    });
    after(() => rmSync(dir, { recursive: true, force: true }));

    const expected: Array<[rule: string, violation: string]> = [
      ['no-file-cycle', 'actors/f/one.ts -> actors/f/two.ts'],
      ['no-upward-import', 'actors/x -> actors/z'],
      ['tools-on-top', 'actors/x/u.ts -> tools/t.ts'],
      ['actors-over-protocols-and-machines', 'protocols/qmp/q.ts -> actors/x/v.ts'],
      ['actors-over-protocols-and-machines', 'machines/m.ts -> protocols/hello/h.ts'],
      ['protocols-apart', 'protocols/stream/a.ts -> protocols/multifd/b.ts'],
      ['no-unresolvable', 'actors/x/u.ts -> ./missing.js'],
    ];
    for (const [rule, violation] of expected) {
      it(`${rule}: ${violation}`, () => expect(found).to.include(`${rule}: ${violation}`));
    }

    it('lets the allowed imports through: a shared protocol folder, a file in protocols/, a lower layer', () => {
      const allowed = ['protocols/stream/a.ts -> protocols/hello/h.ts', 'protocols/stream/a.ts -> protocols/size.ts', 'actors/x/y.ts -> protocols/stream/a.ts', 'tools/t.ts -> actors/x/y.ts'];
      for (const edge of allowed) expect(found.filter((f) => f.endsWith(`: ${edge}`)), edge).to.deep.equal([]);
    });

    it('every rule is tried here', () => {
      expect(new Set(expected.map(([rule]) => rule))).to.deep.equal(new Set(LAYERING_RULES.map((r) => r.name)));
    });
  });
});
