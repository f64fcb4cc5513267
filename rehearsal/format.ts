/** How the rehearsal scripts print: durations and plain-text tables. */

export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

/** Rows as left-aligned columns, two spaces apart (the first row is the header). */
export function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd()).join("\n");
}
