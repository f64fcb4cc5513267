/**
 * Which suites the lone-clone test (standalone-clone.test.ts) runs in a clone with
 * nothing beside it. What differs there is only what lies outside the repository: a
 * folder beside the project (../shared, where the pinned reference/ files were
 * generated), build output and untracked files. So the clone runs the suites that
 * could notice: those whose code, or any local module it imports, names the folder
 * beside the project or reads the pinned files under reference/. tsc over the whole
 * clone covers every other module, and a forgotten file shows there or in those suites.
 *
 * The rehearsals (rehearsal-*.test.ts) are left out: they take minutes each, read only
 * reference/ files through the project's own modules (rehearsal/control-plane.ts: the
 * Calico CRDs and the Ignition apply check, which ignition-apply.test.ts and
 * reference.test.ts also read in the clone), and none may name the folder beside the
 * project: the lone-clone test checks that, so leaving them out stays safe. One module
 * may: rehearsal/pinned-sources.ts names it as where `npm run tools` finds a source the
 * Go module proxy refuses. The rehearsals run the cached builds, never the source, and
 * skip saying what to put where when a build is missing (tools.ts toolsUnavailable).
 *
 * Pure: reads files, runs nothing.
 */
import * as fs from "node:fs";
import * as path from "node:path";

/** Names the folder beside the project in code: `../shared`, or "shared" as a path part. */
export const NAMES_FOLDER_BESIDE = /\.\.\/shared\b|["'`]shared["'`/]/;
/** Where the tools' builds find their pinned sources: the one module a rehearsal may import that names the folder (above). */
export const PINNED_SOURCES_MODULE = "rehearsal/pinned-sources.ts";
/** Reads the pinned copies under reference/ in code: support/reference.ts, or a path into reference/. */
export const READS_PINNED_FILES = /["'`](\.\.\/)*reference["'`/]|support\/reference["']/;

const IMPORT = /(?:\bfrom\s+|\bimport\s*\(\s*|\brequire\s*\(\s*)["'](\.{1,2}\/[^"']+)["']/g;

/** The local modules `file` imports (relative specifiers only), resolved to files. */
export function localImports(file: string): string[] {
  const text = fs.readFileSync(file, "utf8");
  const found: string[] = [];
  for (const m of text.matchAll(IMPORT)) {
    const base = path.resolve(path.dirname(file), m[1]);
    const resolved = [base, `${base}.ts`, `${base}.js`, path.join(base, "index.ts")].find((f) => fs.existsSync(f) && fs.statSync(f).isFile());
    if (resolved) found.push(resolved);
  }
  return found;
}

/** `file` and every local module it imports, directly or not (node_modules and .gen aside). */
export function importClosure(file: string): string[] {
  const seen = new Set<string>();
  const queue = [path.resolve(file)];
  while (queue.length > 0) {
    const next = queue.pop()!;
    if (seen.has(next) || /[/\\](node_modules|\.gen)[/\\]/.test(next)) continue;
    seen.add(next);
    queue.push(...localImports(next));
  }
  return [...seen].sort();
}

/** A module's text without its comments (which may mention reference/ or ../shared without reading them). */
function code(file: string): string {
  return fs
    .readFileSync(file, "utf8")
    .replace(/\/\*[\s\S]*?\*\//g, "")
    .replace(/(^|[^:])\/\/.*$/gm, "$1");
}

/** The files of `closure` whose code matches `pattern`, relative to `repo`. */
export function filesMatching(repo: string, closure: readonly string[], pattern: RegExp): string[] {
  return closure.filter((f) => pattern.test(code(f))).map((f) => path.relative(repo, f));
}

export interface LoneCloneSuites {
  /** Suites to run in the clone, with why: the files that name the folder beside or read pinned files. */
  readonly run: readonly { readonly suite: string; readonly because: readonly string[] }[];
  /** The rehearsal suites, left out, each with the files of its closure that name the folder beside (must be none). */
  readonly rehearsals: readonly { readonly suite: string; readonly namesFolderBeside: readonly string[] }[];
}

/** Sorts the suites under `repo`/__tests__ into those the lone clone runs and the rehearsals it leaves out. */
export function loneCloneSuites(repo: string): LoneCloneSuites {
  const dir = path.join(repo, "__tests__");
  const suites = fs.readdirSync(dir).filter((f) => f.endsWith(".test.ts") && f !== "standalone-clone.test.ts").sort();
  const run: { suite: string; because: string[] }[] = [];
  const rehearsals: { suite: string; namesFolderBeside: string[] }[] = [];
  for (const suite of suites) {
    const closure = importClosure(path.join(dir, suite));
    const beside = filesMatching(repo, closure, NAMES_FOLDER_BESIDE);
    if (suite.startsWith("rehearsal-")) {
      rehearsals.push({ suite, namesFolderBeside: beside.filter((f) => f !== PINNED_SOURCES_MODULE) });
      continue;
    }
    const because = [...new Set([...beside, ...filesMatching(repo, closure, READS_PINNED_FILES)])].sort();
    if (because.length > 0) run.push({ suite, because });
  }
  return { run, rehearsals };
}
