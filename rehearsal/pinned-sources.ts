/**
 * Upstream sources the Go module proxy refuses (docs/rehearsal.md), pinned by release,
 * commit and SHA-256: the one place that knows where each comes from. The rehearsal's
 * tools build them unmodified; nothing from them is committed.
 *
 * A source is found, in this order:
 *   1. a checkout of the pinned commit at `$V6FABRIC_PINNED_SOURCES/<name>-<version>/`
 *      (what the pull-request workflow makes with actions/checkout), its HEAD checked;
 *   2. the tarball `$V6FABRIC_PINNED_SOURCES/<tarball>`, its SHA-256 checked;
 * where V6FABRIC_PINNED_SOURCES defaults to `../shared/upstream/sources` beside the
 * repository. A lone clone has neither: `missingSourceAdvice()` says what to put where,
 * and the tests that need the build skip loudly.
 */
import { spawnSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";

export interface PinnedSource {
  /** Folder name of the unpacked tree, without the version: `terraform-provider-metal`. */
  readonly name: string;
  readonly version: string;
  /** The tarball's file name, and the SHA-256 of its bytes. */
  readonly tarball: string;
  readonly sha256: string;
  /** GitHub `owner/name` and the full commit of the release. */
  readonly repository: string;
  readonly commit: string;
}

/** equinix/metal 3.3.0 (tag v3.3.0): the provider the app's Metal objects are written for. */
export const METAL_PROVIDER_SOURCE: PinnedSource = {
  name: "terraform-provider-metal",
  version: "3.3.0",
  tarball: "terraform-provider-metal-3.3.0.tar.gz",
  sha256: "62f3f6331476ff7bcd5c71238c013e8cbe23d71ce7da21d05c2f9fd46961e717",
  repository: "equinix/terraform-provider-metal",
  commit: "5b6938ab0f6f200cbe414418a0e7f2d5ff988594",
};

/** Every source the project pins, for `npm run tools -- --list` and the workflow's checkouts. */
export const PINNED_SOURCES: readonly PinnedSource[] = [METAL_PROVIDER_SOURCE];

/** The folder pinned sources are read from (see the module comment). */
export function pinnedSourcesDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.V6FABRIC_PINNED_SOURCES) return path.resolve(env.V6FABRIC_PINNED_SOURCES);
  return path.resolve(__dirname, "..", "..", "shared", "upstream", "sources");
}

/** Where a checkout of the pinned commit is looked for. */
export function checkoutDir(source: PinnedSource, env: NodeJS.ProcessEnv = process.env): string {
  return path.join(pinnedSourcesDir(env), `${source.name}-${source.version}`);
}

export type SourceLocation = { readonly kind: "checkout"; readonly dir: string } | { readonly kind: "tarball"; readonly file: string };

/** Where the source is, or undefined when neither form exists. Does not verify it. */
export function locateSource(source: PinnedSource, env: NodeJS.ProcessEnv = process.env): SourceLocation | undefined {
  const dir = checkoutDir(source, env);
  if (fs.existsSync(path.join(dir, "go.mod"))) return { kind: "checkout", dir };
  const file = path.join(pinnedSourcesDir(env), source.tarball);
  if (fs.existsSync(file)) return { kind: "tarball", file };
  return undefined;
}

/** What to put where, for a machine without the source (printed by tools, quoted by skipping tests). */
export function missingSourceAdvice(source: PinnedSource, env: NodeJS.ProcessEnv = process.env): string {
  return (
    `${source.name} ${source.version} is built from its pinned source, which is not on this machine: ` +
    `check out github.com/${source.repository} at commit ${source.commit} into ${checkoutDir(source, env)}, ` +
    `or put ${source.tarball} (SHA-256 ${source.sha256}) in ${pinnedSourcesDir(env)}; ` +
    `V6FABRIC_PINNED_SOURCES names another folder`
  );
}

export function sha256File(file: string): string {
  return crypto.createHash("sha256").update(fs.readFileSync(file)).digest("hex");
}

/**
 * Puts the verified source tree in `work/<name>-<version>` and returns its path: a
 * tarball must match its SHA-256, a checkout must be at the pinned commit. Throws,
 * naming what differs, otherwise.
 */
export function unpackSource(source: PinnedSource, work: string, env: NodeJS.ProcessEnv = process.env): string {
  const location = locateSource(source, env);
  if (!location) throw new Error(missingSourceAdvice(source, env));
  const tree = path.join(work, `${source.name}-${source.version}`);
  if (location.kind === "tarball") {
    const actual = sha256File(location.file);
    if (actual !== source.sha256) throw new Error(`${location.file} has SHA-256 ${actual}, not the pinned ${source.sha256}: refusing to build it`);
    const untar = spawnSync("tar", ["-xzf", location.file, "-C", work], { encoding: "utf8" });
    if (untar.status !== 0) throw new Error(`tar -xzf ${location.file} failed: ${untar.stderr}`);
    if (!fs.existsSync(path.join(tree, "go.mod"))) throw new Error(`${location.file} does not hold ${path.basename(tree)}/go.mod`);
    return tree;
  }
  const head = spawnSync("git", ["-C", location.dir, "rev-parse", "HEAD"], { encoding: "utf8" });
  if (head.status !== 0 || head.stdout.trim() !== source.commit) {
    throw new Error(`${location.dir} is not a checkout of ${source.repository} at ${source.commit} (HEAD: ${head.stdout.trim() || head.stderr.trim()})`);
  }
  // Built from a copy, so the checkout stays clean whatever the build writes.
  fs.cpSync(location.dir, tree, { recursive: true, filter: (p) => path.basename(p) !== ".git" });
  return tree;
}
