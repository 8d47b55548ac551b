/**
 * DOT → SVG with Graphviz's `dot` layout, compiled to WebAssembly by
 * @viz-js/viz: the same layout offline, on any machine, without a Graphviz
 * install. The WASM module is instantiated once, on first use.
 */
import { instance, type Viz } from '@viz-js/viz';

let graphviz: Promise<Viz> | undefined;

/** @throws Error with Graphviz's messages when the DOT does not parse. */
export async function renderSvg(dot: string): Promise<string> {
  graphviz ??= instance();
  const viz = await graphviz;
  const result = viz.render(dot, { format: 'svg', engine: 'dot' });
  if (result.status !== 'success') {
    throw new Error(`Graphviz could not lay out the chart: ${result.errors.map((e) => e.message).join('; ')}`);
  }
  return result.output;
}
