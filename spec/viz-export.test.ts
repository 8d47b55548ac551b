import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createMachine, type AnyStateMachine } from 'xstate';
import { toDirectedGraph, type DirectedGraphNode } from 'xstate/graph';
import { destinationMachine } from '../machines/destination.js';
import { returnPathMachine } from '../machines/return-path.js';
import { sourceMachine } from '../machines/source.js';
import { toDot } from '../tools/viz/dot.js';
import { graphs, type ChartName } from '../tools/viz/machines.js';
import { toMermaid } from '../tools/viz/mermaid.js';
import { eventName, statechartGraph, unreachableStates } from '../tools/viz/statechart-graph.js';
import { renderSvg } from '../tools/viz/svg.js';
import { LIVEMIG, REPO_ROOT } from './support/instances.js';

interface Expected {
  /** Every state node: id, key, and whether it has children. */
  states: { id: string; key: string; compound: boolean }[];
  /** Every transition as `source id -> target id : event`. */
  transitions: string[];
}

/** The machine as xstate's own graph utility sees it: the reference the exports are checked against. */
function expected(machine: AnyStateMachine): Expected {
  const states: Expected['states'] = [];
  const transitions: string[] = [];
  const visit = (node: DirectedGraphNode) => {
    // Labelled as a reader calls the event (XState's internal ones spelled out).
    for (const edge of node.edges) transitions.push(`${edge.source.id} -> ${edge.target.id} : ${eventName(edge.label.text)}`);
    for (const child of node.children) {
      states.push({ id: child.id, key: child.stateNode.key, compound: child.children.length > 0 });
      visit(child);
    }
  };
  visit(toDirectedGraph(machine));
  return { states, transitions: transitions.sort() };
}

/** DOT edges read back: a `ltail`/`lhead` cluster stands for its compound state. */
function dotTransitions(dot: string): string[] {
  const out: string[] = [];
  for (const line of dot.split('\n')) {
    const m = /^\s*"([^"]+)" -> "([^"]+)" \[(.*)\];$/.exec(line);
    if (!m) continue;
    const attr = (name: string) => new RegExp(`${name}="([^"]*)"`).exec(m[3]!)?.[1];
    const label = attr('label');
    if (label === undefined) continue; // an initial-state marker
    const from = attr('ltail')?.replace(/^cluster_/, '') ?? m[1]!;
    const to = attr('lhead')?.replace(/^cluster_/, '') ?? m[2]!;
    out.push(`${from} -> ${to} : ${label.split('\\n')[0]}`);
  }
  return out.sort();
}

/** Mermaid transitions read back to state keys. */
function mermaidTransitions(mmd: string, keyOf: (mermaidId: string) => string): string[] {
  const out: string[] = [];
  for (const line of mmd.split('\n')) {
    const m = /^\s*(\S+) --> (\S+) : (.+?)(?: \[.*\])?$/.exec(line);
    if (m && m[1] !== '[*]') out.push(`${keyOf(m[1]!)} -> ${keyOf(m[2]!)} : ${m[3]}`);
  }
  return out.sort();
}

/**
 * What each machine's reference must know, so that it is not vacuous (some
 * states and one transition by name), and the states with no way in yet.
 */
const KNOWN: Readonly<Record<ChartName, { states: string[]; transition: string; faint: string[] }>> = {
  source: {
    states: ['none', 'setup', 'active', 'completed', 'failed', 'postcopy-active', 'postcopy-paused'],
    transition: 'active -> completed : completed',
    faint: [],
  },
  destination: {
    states: ['none', 'setup', 'active', 'completed', 'failed', 'postcopy-active', 'postcopy-paused'],
    transition: 'active -> completed : load.done',
    faint: [],
  },
  'return-path': {
    states: ['return-path.opening', 'return-path.open', 'return-path.bad'],
    transition: 'return-path.open -> return-path.closed : shut',
    faint: [],
  },
};

for (const machine of [sourceMachine, destinationMachine, returnPathMachine]) {
  const side = machine.id as ChartName;

  describe(`viz export of the ${side} machine`, () => {
    const reference = expected(machine);
    const dot = toDot(graphs[side]);
    const mmd = toMermaid(graphs[side]);

    it('has in its DOT every state: a node per status, a cluster per compound state', () => {
      for (const s of reference.states) {
        if (s.compound) expect(dot).to.contain(`subgraph "cluster_${s.id}" {`);
        else expect(dot).to.match(new RegExp(`^\\s*"${s.id}" \\[label="${s.key}", id="${side}-state-${s.id}"`, 'm'));
      }
      // The reference is not vacuous: it knows the states.
      expect(reference.states.map((s) => s.id)).to.include.members(KNOWN[side].states);
    });

    it('has in its DOT exactly the transitions of the machine', () => {
      expect(dotTransitions(dot)).to.deep.equal(reference.transitions);
      expect(reference.transitions).to.include(KNOWN[side].transition);
    });

    it('has in its Mermaid every state, nested as in the machine, and exactly its transitions', () => {
      const keyOfId = new Map<string, string>();
      for (const m of mmd.matchAll(/^\s*state "([^"]+)" as (\S+)$/gm)) keyOfId.set(m[2]!, m[1]!);
      for (const m of mmd.matchAll(/^\s*(?:state )?([A-Za-z0-9_]+)(?: \{)?$/gm)) keyOfId.set(m[1]!, m[1]!);
      expect([...new Set(keyOfId.values())].sort()).to.deep.equal(reference.states.map((s) => s.key).sort());
      const keyOf = (id: string) => keyOfId.get(id) ?? `<undeclared ${id}>`;
      const byKey = (id: string) => reference.states.find((s) => s.id === id)!.key;
      const wanted = reference.transitions.map((t) => {
        const [, from, to, event] = /^(\S+) -> (\S+) : (.+)$/.exec(t)!;
        return `${byKey(from!)} -> ${byKey(to!)} : ${event}`;
      });
      expect(mermaidTransitions(mmd, keyOf)).to.deep.equal(wanted.sort());
      // The compound block holds its children (the return path has none).
      if (side === 'return-path') return;
      const block = /^ {2}state running \{\n([\s\S]*?)\n {2}\}$/m.exec(mmd)!;
      expect(block[1]).to.contain('    [*] --> setup\n').and.contain('\n    active\n');
    });

    it("draws a compound state's own transitions from its cluster's border, not from its initial leaf", () => {
      for (const c of graphs[side].states.filter((x) => x.compound)) {
        const edges = dot.split('\n').filter((l) => l.includes(`ltail="cluster_${c.id}"`));
        for (const e of edges) expect(e, e).to.match(new RegExp(`^\\s*"${c.id}\\.__exit" -> `));
        const cluster = new RegExp(`subgraph "cluster_${c.id}" \\{\n([\\s\\S]*?)\n\\s*\\}`).exec(dot)![1]!;
        expect(cluster.includes(`"${c.id}.__exit" [shape=point`)).to.equal(edges.length > 0);
      }
      if (side !== 'return-path') expect(dot).to.contain(`"${side}.running.__exit" -> "failed"`);
      // The actor a compound state invokes is named on it, in both formats.
      const invoked = { source: 'migration', destination: 'incoming', 'return-path': null }[side];
      if (invoked !== null) {
        expect(dot).to.contain(`label="running\\ninvokes ${invoked}"`);
        expect(mmd).to.contain(`  note right of running : invokes ${invoked}\n`);
      }
    });

    it('draws a final state with a double border, and faint only the states no transition leads to yet', () => {
      const faint: string[] = [];
      for (const s of graphs[side].states.filter((x) => !x.compound)) {
        const node = new RegExp(`^\\s*"${s.id}" \\[(.*)\\];$`, 'm').exec(dot)![1]!;
        expect(node.includes('peripheries=2'), `${s.id} drawn final`).to.equal(machine.getStateNodeById(s.id).type === 'final');
        if (node.includes('class="state unreachable"')) faint.push(s.id);
      }
      expect(faint).to.deep.equal(KNOWN[side].faint);
    });

    it('lays the DOT out as SVG with an element id per state and per transition', async () => {
      const svg = (await renderSvg(dot)).replace(/&#45;/g, '-');
      expect(svg).to.match(/^<\?xml/).and.contain('<svg');
      for (const s of graphs[side].states) expect(svg).to.contain(`id="${side}-state-${s.id}"`);
      for (const t of graphs[side].transitions) expect(svg).to.contain(`id="${t.id}"`);
    });
  });
}

describe('viz export of a state no transition leads to', () => {
  const machine = createMachine({ id: 'sketch', initial: 'idle', states: { idle: { on: { go: 'busy' } }, busy: {}, 'not-yet': {} } });
  const graph = statechartGraph(machine);

  it('is marked unreachable in DOT (faint, dashed) and in Mermaid (its own class), and no other state is', () => {
    expect(unreachableStates(graph)).to.deep.equal(new Set(['sketch.not-yet']));
    const dot = toDot(graph);
    expect(dot).to.match(/"sketch\.not-yet" \[[^\]]*class="state unreachable"/);
    expect(dot.match(/class="state unreachable"/g)).to.have.length(1);
    const mmd = toMermaid(graph);
    expect(mmd).to.contain('classDef unreachable ');
    expect(mmd.trimEnd().split('\n').at(-1)).to.equal('  class sketch_not_yet unreachable');
  });
});

describe('livemig viz --export', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'livemig-viz-export-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('writes source, destination and return-path as SVG, DOT and Mermaid, and exits 0', async () => {
    const out = join(dir, 'charts');
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', LIVEMIG, 'viz', '--export', out], { cwd: REPO_ROOT });
    const names = ['source', 'destination', 'return-path'].flatMap((m) => [`${m}.dot`, `${m}.svg`, `${m}.mmd`]);
    expect(stdout.trim().split('\n')).to.deep.equal(names.map((n) => join(out, n)));
    expect(readdirSync(out).sort()).to.deep.equal([...names].sort());
    expect(readFileSync(join(out, 'source.dot'), 'utf8')).to.equal(toDot(graphs.source));
    expect(readFileSync(join(out, 'destination.mmd'), 'utf8')).to.equal(toMermaid(graphs.destination));
    expect(readFileSync(join(out, 'destination.svg'), 'utf8')).to.equal(await renderSvg(toDot(graphs.destination)));
    expect(readFileSync(join(out, 'return-path.dot'), 'utf8')).to.equal(toDot(graphs['return-path']));
  });

  it("keeps the README's charts (docs/statecharts) as the machines are now", () => {
    const docs = join(REPO_ROOT, 'docs', 'statecharts');
    for (const side of ['source', 'destination', 'return-path'] as const) {
      const stale = `docs/statecharts/${side} is stale: run \`livemig viz --export docs/statecharts\``;
      expect(readFileSync(join(docs, `${side}.dot`), 'utf8'), stale).to.equal(toDot(graphs[side]));
      expect(readFileSync(join(docs, `${side}.mmd`), 'utf8'), stale).to.equal(toMermaid(graphs[side]));
    }
  });

  it('refuses a bad option with status 2', async () => {
    const run = promisify(execFile)(process.execPath, ['--import', 'tsx', LIVEMIG, 'viz', '--source', 'udp:x'], { cwd: REPO_ROOT });
    const err = await run.then(() => null, (e: { code: number; stderr: string }) => e);
    expect(err?.code).to.equal(2);
    expect(err?.stderr).to.equal("livemig viz: 'udp:x': expected unix:PATH or tcp:HOST:PORT\n");
  });
});
