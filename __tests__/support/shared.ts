/**
 * `../shared` (beside the project) holds reference schemas and tools. CI always has
 * it; a user's clone may not. Tests that need it skip loudly, never pass silently.
 */
import * as fs from "node:fs";
import * as path from "node:path";

export const SHARED_DIR = path.resolve(__dirname, "..", "..", "..", "shared");
export const hasShared = fs.existsSync(path.join(SHARED_DIR, "schemas"));

/** `describe` when ../shared exists, otherwise a skipped block that says why, loudly. */
export function describeWithShared(name: string, body: () => void): void {
  if (hasShared) {
    describe(name, body);
    return;
  }
  // eslint-disable-next-line no-console
  console.warn(`SKIPPED "${name}": ${SHARED_DIR} is absent (reference schemas/tools live there; CI always has it)`);
  describe.skip(`${name} [SKIPPED: ../shared is absent]`, body);
}

export function sharedPath(...parts: string[]): string {
  return path.join(SHARED_DIR, ...parts);
}
