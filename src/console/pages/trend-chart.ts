import { html, type Html } from '../html.js';
import type { TrendRow } from '../console-queries.js';

/**
 * The last runs as a small SVG bar chart, oldest on the left: the bar's height is the number
 * of findings (criticals drawn in red on top of warnings), and a dot marks a run with money at
 * risk. Inline SVG, so the page still needs no script and no image request.
 */
export function trendChart(rows: readonly TrendRow[]): Html {
  if (rows.length === 0) return html`<p class="muted">No reconciliation has finished yet.</p>`;
  const width = 640;
  const height = 120;
  const top = 14;
  const bottom = 18;
  const most = Math.max(1, ...rows.map((row) => row.findings));
  const slot = width / rows.length;
  const bar = Math.max(4, Math.min(36, slot * 0.7));
  const scale = (count: number) => ((height - top - bottom) * count) / most;
  const bars = rows.map((row, index) => {
    const x = index * slot + (slot - bar) / 2;
    const total = scale(row.findings);
    const critical = scale(row.critical);
    const risk = row.at_risk.length > 0;
    const title = `run ${row.id} (${row.status}): ${row.findings} findings, ${row.critical} critical${risk ? ', money at risk' : ''}`;
    return html`<g><title>${title}</title>
<rect x="${x.toFixed(1)}" y="${(height - bottom - total).toFixed(1)}" width="${bar.toFixed(1)}" height="${(total - critical).toFixed(1)}" fill="#b7791f"></rect>
<rect x="${x.toFixed(1)}" y="${(height - bottom - critical).toFixed(1)}" width="${bar.toFixed(1)}" height="${critical.toFixed(1)}" fill="#c0392b"></rect>
${risk ? html`<circle cx="${(x + bar / 2).toFixed(1)}" cy="${(height - bottom - total - 6).toFixed(1)}" r="3" fill="#c0392b"></circle>` : ''}
<text x="${(x + bar / 2).toFixed(1)}" y="${height - 4}" font-size="10" text-anchor="middle" fill="currentColor">${row.id}</text></g>`;
  });
  return html`<svg class="trend" viewBox="0 0 ${width} ${height}" role="img" aria-label="findings per reconciliation run, oldest first (most: ${most})">
<line x1="0" y1="${height - bottom}" x2="${width}" y2="${height - bottom}" stroke="currentColor" stroke-opacity=".3"></line>${bars}</svg>
<p class="muted">Findings per run (red: critical; a dot: money at risk), most ${most}.</p>`;
}
