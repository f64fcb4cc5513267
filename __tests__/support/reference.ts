/**
 * Reference material the tests check against: JSON Schemas derived from upstream
 * sources (equinix/metal 3.3.0, kubeadm v1beta4, Calico 3.32) and the Ignition
 * apply check. They live in the repository under reference/ (reference/README.md says
 * where each comes from and how to refresh it), so a clone with nothing beside it runs
 * every check.
 */
import * as path from "node:path";

export const REFERENCE_DIR = path.resolve(__dirname, "..", "..", "reference");

export function referencePath(...parts: string[]): string {
  return path.join(REFERENCE_DIR, ...parts);
}
