/**
 * `livemig viz --export DIR`: each machine as `<name>.dot`, `<name>.svg` and
 * `<name>.mmd` (source, destination, return-path), for documentation (the
 * README embeds them).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { toDot } from './dot.js';
import { CHARTS, graphs } from './machines.js';
import { toMermaid } from './mermaid.js';
import { renderSvg } from './svg.js';

/** Writes three files per machine and returns their paths. */
export async function exportCharts(dir: string): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const written: string[] = [];
  for (const name of CHARTS) {
    const dot = toDot(graphs[name]);
    const files: [string, string][] = [
      [`${name}.dot`, dot],
      [`${name}.svg`, await renderSvg(dot)],
      [`${name}.mmd`, toMermaid(graphs[name])],
    ];
    for (const [name, text] of files) {
      const path = join(dir, name);
      await writeFile(path, text);
      written.push(path);
    }
  }
  return written;
}
