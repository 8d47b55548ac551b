/** A small line chart as inline SVG: no dependency, enough to see a migration's shape. */

export interface PlotSeries {
  name: string;
  color: string;
  points: [number, number][];
  /** Each point a dot, unjoined (a scatter plot). */
  dots?: boolean;
}

export interface PlotOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  series: PlotSeries[];
  width?: number;
  height?: number;
}

const MARGIN = { left: 56, right: 12, top: 40, bottom: 40 };

export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Round tick steps (1, 2, 5 × 10^n) covering 0..max in about five steps. */
function ticks(max: number): number[] {
  if (!(max > 0)) return [0, 1];
  const raw = max / 5;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw)!;
  const out: number[] = [];
  for (let v = 0; v <= max + step * 1e-9; v += step) out.push(v);
  if (out.at(-1)! < max) out.push(out.at(-1)! + step);
  return out;
}

function label(v: number): string {
  if (Number.isInteger(v) || Math.abs(v) >= 1000) return String(Math.round(v));
  return Math.abs(v) < 0.01 ? v.toExponential(0) : String(Number(v.toPrecision(2)));
}

export function lineChart(o: PlotOptions): string {
  const width = o.width ?? 460;
  const height = o.height ?? 240;
  const all = o.series.flatMap((s) => s.points);
  const xTicks = ticks(Math.max(0, ...all.map((p) => p[0])));
  const yTicks = ticks(Math.max(0, ...all.map((p) => p[1])));
  const xMax = xTicks.at(-1)!;
  const yMax = yTicks.at(-1)!;
  const plotW = width - MARGIN.left - MARGIN.right;
  const plotH = height - MARGIN.top - MARGIN.bottom;
  const x = (v: number) => MARGIN.left + (v / xMax) * plotW;
  const y = (v: number) => MARGIN.top + plotH - (v / yMax) * plotH;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<text x="${width / 2}" y="16" text-anchor="middle" font-size="13" font-weight="bold">${escapeXml(o.title)}</text>`,
  ];
  for (const t of yTicks) {
    parts.push(`<line x1="${MARGIN.left}" x2="${width - MARGIN.right}" y1="${y(t)}" y2="${y(t)}" stroke="#e4e4e4"/>`);
    parts.push(`<text x="${MARGIN.left - 4}" y="${y(t) + 4}" text-anchor="end">${label(t)}</text>`);
  }
  for (const t of xTicks) {
    parts.push(`<line x1="${x(t)}" x2="${x(t)}" y1="${MARGIN.top + plotH}" y2="${MARGIN.top + plotH + 4}" stroke="#888"/>`);
    parts.push(`<text x="${x(t)}" y="${MARGIN.top + plotH + 16}" text-anchor="middle">${label(t)}</text>`);
  }
  parts.push(`<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#888"/>`);
  parts.push(`<text x="${MARGIN.left + plotW / 2}" y="${height - 6}" text-anchor="middle">${escapeXml(o.xLabel)}</text>`);
  parts.push(`<text transform="translate(12 ${MARGIN.top + plotH / 2}) rotate(-90)" text-anchor="middle">${escapeXml(o.yLabel)}</text>`);
  // The legend runs along the top, between the title and the plot.
  let legendX = MARGIN.left;
  for (const s of o.series) {
    if (s.dots) {
      for (const [px, py] of s.points) parts.push(`<circle cx="${x(px).toFixed(1)}" cy="${y(py).toFixed(1)}" r="3" fill="${s.color}" fill-opacity="0.7"/>`);
    } else if (s.points.length > 0) {
      const path = s.points.map(([px, py]) => `${x(px).toFixed(1)},${y(py).toFixed(1)}`).join(' ');
      parts.push(`<polyline points="${path}" fill="none" stroke="${s.color}" stroke-width="2"/>`);
    }
    parts.push(`<rect x="${legendX}" y="${MARGIN.top - 10}" width="12" height="3" fill="${s.color}"/>`);
    parts.push(`<text x="${legendX + 16}" y="${MARGIN.top - 6}">${escapeXml(s.name)}</text>`);
    legendX += 32 + s.name.length * 6;
  }
  parts.push('</svg>');
  return parts.join('\n');
}
