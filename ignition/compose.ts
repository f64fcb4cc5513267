/**
 * Composition of Ignition parts: a node's config is the base part every node gets
 * plus the part of its role, merged here. A path defined by two parts is a bug (one
 * would silently win on the node), so the merge refuses it. A unit may appear in
 * several parts only to add drop-ins: at most one part may give its contents,
 * enablement or mask, and drop-in names must differ.
 */
import { IgnitionConfig, IgnitionDirectory, IgnitionFile, IgnitionLink, IgnitionUnit, IGNITION_SPEC_VERSION } from "./types";

/** A slice of a node's config: files, directories, links and units. */
export interface IgnitionPart {
  readonly files?: readonly IgnitionFile[];
  readonly directories?: readonly IgnitionDirectory[];
  readonly links?: readonly IgnitionLink[];
  readonly units?: readonly IgnitionUnit[];
}

export class CompositionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CompositionError";
  }
}

function unique<T>(items: readonly T[], key: (item: T) => string, what: string): T[] {
  const seen = new Set<string>();
  for (const item of items) {
    const k = key(item);
    if (seen.has(k)) throw new CompositionError(`${what} ${k} is defined twice in the node's Ignition parts`);
    seen.add(k);
  }
  return [...items];
}

/** Merges parts in order into one spec 3.3.0 config; empty sections are left out. */
export function composeConfig(...parts: readonly IgnitionPart[]): IgnitionConfig {
  const all = <K extends keyof IgnitionPart>(key: K) => parts.flatMap((p) => (p[key] ?? []) as NonNullable<IgnitionPart[K]>[number][]);
  const paths = [...all("files"), ...all("directories"), ...all("links")].map((entry) => ({ path: entry.path }));
  unique(paths, (entry) => entry.path, "path");
  const files = all("files") as IgnitionFile[];
  const directories = all("directories") as IgnitionDirectory[];
  const links = all("links") as IgnitionLink[];
  const units = mergeUnits(all("units") as IgnitionUnit[]);
  return {
    ignition: { version: IGNITION_SPEC_VERSION },
    storage: {
      ...(files.length > 0 ? { files } : {}),
      ...(directories.length > 0 ? { directories } : {}),
      ...(links.length > 0 ? { links } : {}),
    },
    ...(units.length > 0 ? { systemd: { units } } : {}),
  };
}

function mergeUnits(units: readonly IgnitionUnit[]): IgnitionUnit[] {
  const merged = new Map<string, IgnitionUnit>();
  for (const unit of units) {
    const earlier = merged.get(unit.name);
    if (!earlier) {
      merged.set(unit.name, unit);
      continue;
    }
    for (const field of ["contents", "enabled", "mask"] as const) {
      if (earlier[field] !== undefined && unit[field] !== undefined) {
        throw new CompositionError(`unit ${unit.name}: ${field} is set by two parts; only drop-ins may be added by a second part`);
      }
    }
    const dropins = unique([...(earlier.dropins ?? []), ...(unit.dropins ?? [])], (d) => `${unit.name}.d/${d.name}`, "drop-in");
    merged.set(unit.name, { ...earlier, ...unit, ...(dropins.length > 0 ? { dropins } : {}) });
  }
  return [...merged.values()];
}
