/**
 * `livemig viz --export DIR`: each machine as `<side>.dot`, `<side>.svg` and
 * `<side>.mmd`, for documentation (the README embeds them).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { toDot } from './dot.js';
import { graphs, SIDES } from './machines.js';
import { toMermaid } from './mermaid.js';
import { renderSvg } from './svg.js';

/** Writes the six files and returns their paths. */
export async function exportCharts(dir: string): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const written: string[] = [];
  for (const side of SIDES) {
    const dot = toDot(graphs[side]);
    const files: [string, string][] = [
      [`${side}.dot`, dot],
      [`${side}.svg`, await renderSvg(dot)],
      [`${side}.mmd`, toMermaid(graphs[side])],
    ];
    for (const [name, text] of files) {
      const path = join(dir, name);
      await writeFile(path, text);
      written.push(path);
    }
  }
  return written;
}
