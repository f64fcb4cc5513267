import { SettingsError, loadSettings } from "../../lib/settings";

/** The problems `loadSettings` reports for `env`, or [] when it is valid. */
export function settingsProblems(env: Record<string, string>): string[] {
  try {
    loadSettings(env);
  } catch (err) {
    if (err instanceof SettingsError) return [...err.problems];
    throw err;
  }
  return [];
}
