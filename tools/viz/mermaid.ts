/**
 * A statechart as a Mermaid `stateDiagram-v2`, for documentation that
 * renders Mermaid (GitHub, most wikis). A state keeps its name as its
 * Mermaid id when Mermaid accepts it (`running`, `setup`); a name with `-`
 * gets a sanitised id and the name as its label. A compound state becomes a
 * composite block declaring its children, and transitions are listed after
 * the blocks so every state they name is already placed.
 */
import { transitionLabel } from './dot.js';
import { unreachableStates, type ChartState, type StatechartGraph } from './statechart-graph.js';

export function toMermaid(graph: StatechartGraph): string {
  const ids = mermaidIds(graph);
  const name = (id: string) => ids.get(id) ?? id;
  const lines = ['stateDiagram-v2'];
  const emit = (state: ChartState, indent: string) => {
    const id = name(state.id);
    if (state.compound) {
      lines.push(`${indent}state ${id} {`);
      lines.push(`${indent}  [*] --> ${name(state.initial!)}`);
      for (const child of graph.states.filter((s) => s.parent === state.id)) emit(child, `${indent}  `);
      lines.push(`${indent}}`);
    } else {
      // Declared where it lives: a state first named by a transition would land at the top level.
      lines.push(id === state.label ? `${indent}${id}` : `${indent}state "${state.label}" as ${id}`);
    }
  };
  for (const state of graph.states.filter((s) => s.parent === null)) emit(state, '  ');
  lines.push(`  [*] --> ${name(graph.initial)}`);
  for (const t of graph.transitions) {
    lines.push(`  ${name(t.from)} --> ${name(t.to ?? t.from)} : ${label(transitionLabel(t))}`);
  }
  for (const state of graph.states.filter((s) => s.invokes.length > 0)) {
    lines.push(`  note right of ${name(state.id)} : invokes ${state.invokes.join(', ')}`);
  }
  // Faint and dashed, as in the DOT export: no transition leads there yet.
  const unreachable = [...unreachableStates(graph)];
  if (unreachable.length > 0) {
    lines.push('  classDef unreachable fill:#f5f7fa,stroke:#bcccdc,stroke-dasharray:4 3,color:#9aa5b1');
    lines.push(`  class ${unreachable.map(name).join(',')} unreachable`);
  }
  return `${lines.join('\n')}\n`;
}

const PLAIN_ID = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** State id → Mermaid id: the state's name when usable and unique, else its id with `-` and `.` as `_`. */
function mermaidIds(graph: StatechartGraph): Map<string, string> {
  const names = graph.states.map((s) => s.label);
  return new Map(
    graph.states.map((s) => {
      const unique = names.indexOf(s.label) === names.lastIndexOf(s.label);
      return [s.id, PLAIN_ID.test(s.label) && unique ? s.label : s.id.replace(/[^A-Za-z0-9_]/g, '_')];
    }),
  );
}

// Mermaid ends a label at `;` and reads `#` as an entity start.
function label(text: string): string {
  return text.replace(/;/g, ',').replace(/#/g, '');
}
