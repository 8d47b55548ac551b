/**
 * A statechart as Graphviz DOT, read top to bottom: status states as
 * rounded boxes, compound states as clusters, one edge per transition
 * labelled `event [guard]`. A state no transition leads to yet (a status
 * whose capability is still to come) is drawn faint; a final state has a
 * double border.
 * Graphviz's `id` attribute becomes the SVG element's id, so the page finds
 * state `active` of the source chart as `source-state-active` and a
 * transition by its ChartTransition id.
 */
import { eventName, unreachableStates, type ChartState, type ChartTransition, type StatechartGraph } from './statechart-graph.js';

/** The SVG id Graphviz gives a state's node (or a compound state's cluster). */
const stateElementId = (machine: string, state: string) => `${machine}-state-${state}`;

export function toDot(graph: StatechartGraph): string {
  const byId = new Map(graph.states.map((s) => [s.id, s]));
  const children = (parent: string | null) => graph.states.filter((s) => s.parent === parent);
  const unreachable = unreachableStates(graph);
  const lines = [
    `digraph ${quote(graph.machine)} {`,
    '  graph [rankdir=TB, compound=true, newrank=true, fontname="Helvetica", fontsize=11, nodesep=0.15, ranksep=0.25, bgcolor="transparent"];',
    '  node [shape=box, style="rounded,filled", fillcolor="#ffffff", color="#5b6b7f", fontname="Helvetica", fontsize=11, height=0.3];',
    '  edge [fontname="Helvetica", fontsize=9, color="#7b8794", fontcolor="#3e4c59", arrowsize=0.7];',
  ];
  const initialMarker = (indent: string, owner: string, target: string) => {
    const marker = `${owner}.__initial`;
    lines.push(`${indent}${quote(marker)} [shape=point, width=0.1, label="", id=${quote(`${graph.machine}-initial-${owner}`)}];`);
    lines.push(`${indent}${quote(marker)} -> ${quote(anchor(byId, target))} [arrowsize=0.5];`);
  };
  const emit = (state: ChartState, indent: string) => {
    if (!state.compound) {
      const attrs = [`label=${quote(state.label)}`, `id=${quote(stateElementId(graph.machine, state.id))}`];
      if (state.final) attrs.push('peripheries=2');
      if (!unreachable.has(state.id)) attrs.push('class="state"');
      else attrs.push('class="state unreachable"', 'style="rounded,filled,dashed"', 'color="#bcccdc"', 'fontcolor="#9aa5b1"', 'tooltip="no transition leads here yet"');
      lines.push(`${indent}${quote(state.id)} [${attrs.join(', ')}];`);
      return;
    }
    lines.push(`${indent}subgraph ${quote(`cluster_${state.id}`)} {`);
    // The actor it invokes is what runs while the machine is in it: named under its label.
    const label = state.invokes.length > 0 ? quote(`${state.label} invokes ${state.invokes.join(', ')}`).replace(' invokes ', '\\ninvokes ') : quote(state.label);
    lines.push(`${indent}  label=${label}; id=${quote(stateElementId(graph.machine, state.id))}; class="state compound";`);
    lines.push(`${indent}  style="rounded,dashed"; color="#9aa5b1"; fontcolor="#52606d";`);
    initialMarker(`${indent}  `, state.id, state.initial!);
    // Where the compound state's own transitions leave it from: not its initial leaf, which would draw them as that leaf's.
    if (graph.transitions.some((t) => t.from === state.id)) lines.push(`${indent}  ${quote(exitAnchor(state.id))} [shape=point, width=0.01, style=invis, label=""];`);
    for (const child of children(state.id)) emit(child, `${indent}  `);
    lines.push(`${indent}}`);
  };
  initialMarker('  ', graph.machine, graph.initial);
  for (const state of children(null)) emit(state, '  ');
  for (const t of graph.transitions) lines.push(`  ${edge(byId, t)}`);
  lines.push('}');
  return `${lines.join('\n')}\n`;
}

/** `event [guard]`: what a transition waits for, as edges and lists show it (XState's internal events spelled out). */
export function transitionLabel(t: Pick<ChartTransition, 'event' | 'guard'>): string {
  const event = eventName(t.event);
  return t.guard === null ? event : `${event} [${t.guard}]`;
}

function edge(byId: Map<string, ChartState>, t: ChartTransition): string {
  // The guard on its own line keeps the chart narrow.
  const attrs = [`label=${quote(transitionLabel(t)).replace(' [', '\\n[')}`, `id=${quote(t.id)}`, 'class="transition"'];
  const to = t.to ?? t.from;
  // An edge can only join nodes: a compound end is drawn to its initial child and clipped at the cluster.
  const fromCompound = byId.get(t.from)?.compound === true;
  if (fromCompound && to !== t.from) attrs.push(`ltail=${quote(`cluster_${t.from}`)}`);
  if (byId.get(to)?.compound && to !== t.from) attrs.push(`lhead=${quote(`cluster_${to}`)}`);
  if (t.to === null) attrs.push('style=dashed');
  const tail = fromCompound ? exitAnchor(t.from) : anchor(byId, t.from);
  // A compound state's transition back to itself (or one with no target) loops on its exit point.
  const head = fromCompound && to === t.from ? tail : anchor(byId, to);
  return `${quote(tail)} -> ${quote(head)} [${attrs.join(', ')}];`;
}

/** The invisible point inside a compound state's cluster that its own transitions leave from (clipped at the border by ltail). */
function exitAnchor(id: string): string {
  return `${id}.__exit`;
}

/** The node an edge at `id` attaches to: the state itself, or a compound state's initial leaf. */
function anchor(byId: Map<string, ChartState>, id: string): string {
  let state = byId.get(id);
  while (state?.compound) state = byId.get(state.initial!);
  return state?.id ?? id;
}

function quote(text: string): string {
  return `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}
