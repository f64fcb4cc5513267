/**
 * Lints the pull-request workflow. The file is parsed with the `yaml` library and checked
 * for what would break it: every step runs or uses something, project logic is only
 * npm scripts that exist, actions are pinned, no untrusted expression reaches a shell,
 * the comment is found again by its marker. Then actionlint (not in Debian bookworm:
 * `npm run tools` builds it from its Go module) checks it with Debian's shellcheck on
 * every run script; without them it skips saying why, and under CI it fails instead.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import YAML from "yaml";
import { ACTIONLINT_VERSION, actionlintBinary } from "../rehearsal/tools";

const root = path.resolve(__dirname, "..");
const workflowsDir = path.join(root, ".github", "workflows");
const workflowFiles = fs.readdirSync(workflowsDir).filter((f) => /\.ya?ml$/.test(f));
const scripts: Record<string, string> = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8")).scripts;

/** npm's own commands the workflow may call besides `npm run <script>`. */
const NPM_BUILTINS = new Set(["ci", "test"]);
/** The only other commands a run step may start with: plumbing, not project logic. */
const PLUMBING = /^(git (config|worktree add)|cd |cat |exit \d|\.ci\/run --system-packages-only$)/;

interface Step {
  name?: string;
  id?: string;
  run?: string;
  uses?: string;
  with?: Record<string, string>;
  env?: Record<string, string>;
  if?: string;
}

function load(file: string): any {
  const doc = YAML.parseDocument(fs.readFileSync(path.join(workflowsDir, file), "utf8"));
  expect(doc.errors).toEqual([]);
  return doc.toJSON();
}

function steps(workflow: any): Step[] {
  return Object.values(workflow.jobs as Record<string, { steps: Step[] }>).flatMap((job) => job.steps);
}

/** Shell command lines of a run step, continuation lines joined. */
function commands(run: string): string[] {
  return run
    .replace(/\\\n/g, " ")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));
}

test("package.json has the scripts a Terraform user expects, each calling what it says", () => {
  // synth runs the app that cdktf.json names, without the CLI (synth-commands.test.ts
  // checks both write the same bytes).
  const app = JSON.parse(fs.readFileSync(path.join(root, "cdktf.json"), "utf8")).app as string;
  expect(scripts.synth).toBe(`CHECKPOINT_DISABLE=1 ${app}`);
  expect(app).toMatch(/\bmain\.ts$/);
  expect(scripts.diff).toMatch(/\bcdktf diff\b/);
  expect(scripts.deploy).toMatch(/\bcdktf deploy '\*'/);
  expect(scripts.destroy).toMatch(/\bcdktf destroy '\*'/);
  expect(scripts.test).toMatch(/\bjest\b/);
  expect(scripts.get).toMatch(/generate-metal-bindings/);
  expect(scripts.report).toMatch(/scripts\/report\.ts$/);
  expect(scripts["synth-diff"]).toMatch(/scripts\/synth-diff\.ts$/);
});

test("there is a pull-request workflow", () => {
  expect(workflowFiles).toContain("pr.yml");
});

describe.each(workflowFiles)("%s", (file) => {
  const workflow = load(file);
  const all = steps(workflow);

  test("parses, has triggers and jobs, and every step has exactly one of run / uses", () => {
    expect(workflow.on).toBeDefined();
    expect(Object.keys(workflow.jobs).length).toBeGreaterThan(0);
    for (const job of Object.values(workflow.jobs) as any[]) expect(job["runs-on"]).toBeDefined();
    for (const step of all) expect([step.name, Number(step.run !== undefined) + Number(step.uses !== undefined)]).toEqual([step.name, 1]);
  });

  test("project logic is only npm scripts that exist in package.json", () => {
    const called: string[] = [];
    for (const step of all.filter((s) => s.run)) {
      for (const line of commands(step.run!)) {
        const npm = /^npm (?:run (?:--silent )?([\w:-]+)|([\w-]+))/.exec(line);
        if (npm?.[1]) {
          called.push(npm[1]);
          expect([line, npm[1] in scripts]).toEqual([line, true]);
        } else if (npm?.[2]) {
          expect([line, NPM_BUILTINS.has(npm[2])]).toEqual([line, true]);
        } else {
          expect([line, PLUMBING.test(line)]).toEqual([line, true]);
        }
      }
    }
    if (file === "pr.yml") expect([...new Set(called)].sort()).toEqual(["cdk-terrain", "report", "synth", "synth-diff", "tools"]);
  });

  test("actions are pinned by commit with the release named beside it, and no ${{ }} expression is pasted into a shell script", () => {
    const text = fs.readFileSync(path.join(workflowsDir, file), "utf8");
    for (const step of all) {
      // A tag can be moved; a commit cannot. The comment says which release it is.
      if (step.uses) {
        expect(step.uses).toMatch(/^[\w-]+\/[\w-]+@[0-9a-f]{40}$/);
        expect(text).toMatch(new RegExp(`uses: ${step.uses.replace(/[/.]/g, "\\$&")} # v\\d+\\.\\d+\\.\\d+\\n`));
      }
      // Untrusted values (branch names, titles) would become shell code: pass them through env.
      if (step.run) expect([step.name, step.run.includes("${{")]).toEqual([step.name, false]);
    }
  });
});

describe("pr.yml", () => {
  const workflow = load("pr.yml");
  const all = steps(workflow);
  const runs = all.filter((s) => s.run).map((s) => s.run!).join("\n");

  test("runs on pull requests with a token that may comment and nothing more", () => {
    expect(Object.keys(workflow.on)).toEqual(["pull_request"]);
    expect(workflow.permissions).toEqual({ contents: "read", "pull-requests": "write" });
  });

  test("runs on a Node LTS line that is still supported, in Debian bookworm like .ci/run", () => {
    // End of life of each LTS line (nodejs.org release schedule); odd lines are never LTS.
    const endOfLife: Record<string, string> = { "20": "2026-04-30", "22": "2027-04-30", "24": "2028-04-30", "26": "2029-04-30" };
    const container = workflow.jobs.review.container;
    const image = String(container.image);
    // The control-plane rehearsal needs namespaces and an overlay-capable temp folder.
    expect(container.options).toBe("--privileged --tmpfs /tmp:exec");
    const major = /^node:(\d+)-bookworm$/.exec(image)?.[1];
    expect([image, major && major in endOfLife]).toEqual([image, true]);
    expect(new Date(endOfLife[major!]).getTime()).toBeGreaterThan(Date.now());
  });

  test("builds the rehearsal tools with Go into a cache keyed by their pins, before the tests", () => {
    const index = (pred: (s: Step) => boolean) => all.findIndex(pred);
    const setupGo = all.find((s) => s.uses?.startsWith("actions/setup-go@"))!;
    expect(setupGo.with).toEqual({ "go-version": "1.26", cache: false });
    const cache = all.find((s) => s.uses?.startsWith("actions/cache@"))!;
    expect(String(cache.with?.path).split("\n").filter(Boolean)).toEqual(["~/.cache/v6fabric-tools", "~/go/pkg/mod", "~/.cache/go-build"]);
    // The image archives are made by images.ts and calico-images.ts: a change there must not meet old archives.
    expect(cache.with?.key).toBe(
      "rehearsal-tools-${{ hashFiles('rehearsal/tools.ts', 'rehearsal/images.ts', 'rehearsal/calico-tools.ts', 'rehearsal/calico-images.ts', 'rehearsal/pinned-sources.ts', 'lib/versions.ts') }}",
    );
    const tools = index((s) => s.run === "npm run tools");
    expect(index((s) => s === setupGo)).toBeLessThan(tools);
    expect(index((s) => s === cache)).toBeLessThan(tools);
    expect(tools).toBeLessThan(index((s) => s.run === "npm test"));
    expect(fs.readFileSync(path.join(root, ".ci", "run"), "utf8")).toMatch(/^npm run tools$/m);
  });

  test("installs CDK Terrain before the tests, as .ci/run does, so its comparison runs", () => {
    const install = all.findIndex((s) => s.run === "npm run cdk-terrain");
    expect(install).toBeGreaterThan(all.findIndex((s) => s.run?.startsWith("npm ci")));
    expect(install).toBeLessThan(all.findIndex((s) => s.run === "npm test"));
    const ciRun = fs.readFileSync(path.join(root, ".ci", "run"), "utf8");
    expect(ciRun).toMatch(/^npm run cdk-terrain$/m);
    expect(ciRun.indexOf("npm run cdk-terrain")).toBeLessThan(ciRun.search(/^npm test$/m));
  });

  test("installs the system packages of .ci/run, then npm ci, then the tests, before synthesizing", () => {
    const order = ["--system-packages-only", "npm ci", "npm test", "npm run synth"].map((needle) => all.findIndex((s) => s.run?.includes(needle)));
    expect(order.every((i) => i >= 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    const ciRun = fs.readFileSync(path.join(root, ".ci", "run"), "utf8");
    expect(ciRun).toMatch(/"\$\{1:-\}" = "--system-packages-only" \]; then exit 0/);
    expect(ciRun.indexOf("apt-get install")).toBeLessThan(ciRun.indexOf("--system-packages-only"));
    expect(ciRun).toMatch(/apt_packages=\([^)]*\bdirenv\b/);
    // actionlint's shell checks (below) run Debian's shellcheck.
    expect(ciRun).toMatch(/apt_packages=\([^)]*\bshellcheck\b/);
  });

  test("synthesizes the base in a git worktree and diffs it against the head with npm run synth-diff", () => {
    const base = all.find((s) => s.run?.includes("git worktree add"))!;
    expect(base.env?.BASE_SHA).toBe("${{ github.event.pull_request.base.sha }}");
    expect(base.run).toMatch(/git worktree add --detach "\$RUNNER_TEMP\/base" "\$BASE_SHA"/);
    expect(base.run).toContain("npm run synth");
    expect(runs).toMatch(/npm run --silent synth-diff -- "\$RUNNER_TEMP\/base\/cdktf\.out" cdktf\.out/);
    expect(all.findIndex((s) => s === base)).toBeLessThan(all.findIndex((s) => s.run?.includes("synth-diff")));
  });

  test("a base that does not synthesize is diffed with an explicit --empty-base, never as a missing directory", () => {
    const base = all.find((s) => s.run?.includes("git worktree add"))!;
    expect(base.id).toBe("base");
    expect(base["continue-on-error" as keyof Step]).toBe(true);
    const diffs = all.filter((s) => s.run?.includes("synth-diff"));
    expect(diffs.map((s) => [s.if, commands(s.run!)])).toEqual([
      [
        "steps.base.outcome == 'success'",
        [
          'npm run --silent synth-diff -- "$RUNNER_TEMP/base/cdktf.out" cdktf.out --max-chars 900000 > "$RUNNER_TEMP/diff-summary.md"',
          'npm run --silent synth-diff -- "$RUNNER_TEMP/base/cdktf.out" cdktf.out --max-chars 40000 > "$RUNNER_TEMP/diff-comment.md"',
        ],
      ],
      [
        "steps.base.outcome != 'success'",
        [
          'npm run --silent synth-diff -- --empty-base cdktf.out --max-chars 900000 > "$RUNNER_TEMP/diff-summary.md"',
          'npm run --silent synth-diff -- --empty-base cdktf.out --max-chars 40000 > "$RUNNER_TEMP/diff-comment.md"',
        ],
      ],
    ]);
    for (const diff of diffs) expect(all.indexOf(base)).toBeLessThan(all.indexOf(diff));
  });

  test("publishes the report and the diff as the job summary", () => {
    const summary = all.find((s) => s.run?.includes("$GITHUB_STEP_SUMMARY"))!;
    expect(summary.run).toContain('"$RUNNER_TEMP/report.md"');
    expect(summary.run).toContain('"$RUNNER_TEMP/diff-summary.md"');
  });

  test("updates one comment found by a hidden marker instead of adding one per run", () => {
    const comment = all.find((s) => s.uses?.startsWith("actions/github-script@"))!;
    const script = comment.with!.script;
    const marker = /const marker = "(<!-- [^"]+ -->)"/.exec(script);
    expect(marker).not.toBeNull();
    expect(script).toContain("github.paginate(github.rest.issues.listComments");
    expect(script).toMatch(/c\.body\?\.includes\(marker\)/);
    expect(script).toMatch(/if \(previous\) \{\s*await github\.rest\.issues\.updateComment\(/);
    expect(script).toMatch(/\} else \{\s*await github\.rest\.issues\.createComment\(/);
    expect(script).toContain("diff-comment.md");
    // The body starts with the marker, so the next run finds it.
    expect(script).toMatch(/let body = \[marker,/);
    // The script is valid JavaScript (github-script wraps it in an async function).
    expect(() => new Function("require", "github", "context", `return (async () => {${script}})`)).not.toThrow();
  });

  test("a test failure still publishes the review, then fails the job", () => {
    const test = all.find((s) => s.run === "npm test")!;
    expect(test["continue-on-error" as keyof Step]).toBe(true);
    const last = all[all.length - 1];
    expect(last.if).toBe(`steps.${test.id}.outcome == 'failure'`);
    expect(last.run).toBe("exit 1");
  });
});

/** The cached build (npm run tools), else one on PATH. */
const actionlint = fs.existsSync(actionlintBinary()) ? actionlintBinary() : spawnSync("sh", ["-c", "command -v actionlint"], { encoding: "utf8" }).stdout.trim();
const shellcheck = spawnSync("sh", ["-c", "command -v shellcheck"], { encoding: "utf8" }).stdout.trim();
const lintMissing = [
  !actionlint && `actionlint (npm run tools -- actionlint builds ${ACTIONLINT_VERSION} into ${path.dirname(actionlintBinary())})`,
  !shellcheck && "shellcheck (apt-get install shellcheck; .ci/run installs it)",
].filter(Boolean);

/** actionlint on `files`, with shellcheck named: actionlint alone would skip the shell checks silently when it finds none. */
function runActionlint(files: readonly string[]): { output: string; status: number | null } {
  const result = spawnSync(actionlint, ["-shellcheck", shellcheck, ...files], { cwd: root, encoding: "utf8" });
  return { output: `${result.stdout}${result.stderr}`, status: result.status };
}

if (lintMissing.length > 0 && process.env.CI) {
  test("actionlint and shellcheck are installed (CI must lint the workflows)", () => {
    throw new Error(`missing ${lintMissing.join(" and ")}`);
  });
} else if (lintMissing.length > 0) {
  console.warn(`SKIPPED actionlint: missing ${lintMissing.join(" and ")}; the structural checks above still ran`);
  test.skip("actionlint with shellcheck finds nothing in the workflows", () => undefined);
} else {
  describe("actionlint with shellcheck", () => {
    test("finds nothing in the workflows", () => {
      expect(runActionlint(workflowFiles.map((f) => path.join(workflowsDir, f)))).toEqual({ output: "", status: 0 });
    });

    test("would report a run script's unquoted variable and an unknown expression context: the shell checks are on", () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "v6fabric-test-actionlint-"));
      try {
        const file = path.join(dir, "bad.yml");
        // pr.yml's "Trust the checkout" step with its quotes lost, and a mistyped context.
        const bad = fs.readFileSync(path.join(workflowsDir, "pr.yml"), "utf8").replace('--add safe.directory "$GITHUB_WORKSPACE"', "--add safe.directory $GITHUB_WORKSPACE").replace("github.event.pull_request.number", "githb.event.pull_request.number");
        fs.writeFileSync(file, bad);
        const { output, status } = runActionlint([file]);
        expect(status).toBe(1);
        expect(output).toMatch(/shellcheck reported issue in this script: SC2086/);
        expect(output).toMatch(/undefined variable "githb"/);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}
