/**
 * The README's settings table, rendered from the SETTINGS table so the two cannot
 * drift (scripts/doc-tables.ts puts it between its markers).
 */
import { SETTINGS } from "./settings";

export function renderSettingsTable(): string {
  const escape = (s: string) => s.replace(/\|/g, "\\|");
  const rows = SETTINGS.map(
    (s) => `| \`${s.name}\` | ${s.default === "" ? "(unset)" : `\`${escape(s.default)}\``} | ${escape(s.description)} |`,
  );
  return ["| Setting | Default | What it does |", "|---|---|---|", ...rows].join("\n");
}
