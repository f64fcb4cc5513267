/**
 * A user's clone, or a GitHub runner's checkout, has nothing beside it: no ../shared,
 * no build output, no untracked file of this working tree. This test clones the
 * repository into an empty temporary folder and, there, runs `npm ci`, type-checks
 * every module (`npm run build`, the type-check half of `npm test`), and runs the suites
 * that could differ in such a clone: those that read the pinned files under reference/
 * or name the folder beside the project (support/lone-clone.ts chooses them and says
 * why; the rest of the suite runs here, in the working tree, with the same committed
 * code). The rehearsals are left out: minutes each, and they read only reference/
 * files, which the chosen suites read in the clone too; the test fails if one of them
 * names the folder beside the project. It only sees committed files: commit first.
 *
 * The nested run sets V6FABRIC_STANDALONE_CLONE so it does not clone itself again.
 * Set V6FABRIC_SKIP_STANDALONE_CLONE=1 to leave it out of a quick local run.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { loneCloneSuites } from "./support/lone-clone";

const repo = path.resolve(__dirname, "..");
const nested = process.env.V6FABRIC_STANDALONE_CLONE === "1";
const optedOut = process.env.V6FABRIC_SKIP_STANDALONE_CLONE === "1";
const isGitCheckout = fs.existsSync(path.join(repo, ".git"));

if (optedOut) console.warn("SKIPPED standalone clone: V6FABRIC_SKIP_STANDALONE_CLONE=1 (CI never sets it)");
else if (!isGitCheckout) console.warn(`SKIPPED standalone clone: ${repo} is not a git checkout`);
const describeClone = nested || optedOut || !isGitCheckout ? describe.skip : describe;

describeClone("a clone with nothing beside it", () => {
  let parent: string;
  // The clone's commands get a TMPDIR of their own, apart from the clone's folder and
  // removed with it: npm ci's postinstall (the provider bindings' generator) leaves a
  // file in TMPDIR, which this run's teardown would find in its temp root.
  let tmp: string;
  beforeAll(() => {
    parent = fs.mkdtempSync(path.join(os.tmpdir(), "v6fabric-alone-"));
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "v6fabric-alone-tmp-"));
  });
  afterAll(() => {
    for (const dir of [parent, tmp]) if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test("npm ci, the type-check and every suite that reads pinned files or could need ../shared pass", () => {
    const timings: string[] = [];
    const timed = <T>(step: string, run: () => T): T => {
      const started = Date.now();
      const value = run();
      timings.push(`${step} ${((Date.now() - started) / 1000).toFixed(1)} s`);
      return value;
    };
    const clone = path.join(parent, "app");
    const git = timed("git clone", () => spawnSync("git", ["clone", "--quiet", "--no-local", repo, clone], { encoding: "utf8" }));
    expect(git.stderr).toBe("");
    expect(git.status).toBe(0);
    expect(fs.readdirSync(parent)).toEqual(["app"]); // nothing beside the clone

    // Chosen from the clone's own (committed) files.
    const { run, rehearsals } = loneCloneSuites(clone);
    expect(rehearsals.filter((r) => r.namesFolderBeside.length > 0)).toEqual([]);
    expect(run.map((r) => r.suite)).toEqual(expect.arrayContaining(["reference.test.ts", "metal-schema.test.ts", "ignition-apply.test.ts"]));
    console.log(
      `standalone clone runs ${run.length} suites:\n${run.map((r) => `  ${r.suite} (${r.because.join(", ")})`).join("\n")}\n` +
        `and leaves out the rehearsals (none names the folder beside the project): ${rehearsals.map((r) => r.suite).join(", ")}`,
    );

    const env = { ...process.env, V6FABRIC_STANDALONE_CLONE: "1", CI: "true", TMPDIR: tmp };
    const sh = (command: string, args: string[]) => spawnSync(command, args, { cwd: clone, env, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
    const tail = (r: { stdout: string; stderr: string }) => `${r.stdout}\n${r.stderr}`.split("\n").slice(-60).join("\n");
    for (const [step, args] of [
      ["npm ci", ["ci", "--no-audit", "--no-fund", "--prefer-offline"]],
      ["npm run build (tsc)", ["run", "build"]],
    ] as const) {
      const result = timed(step, () => sh("npm", [...args]));
      if (result.status !== 0) throw new Error(`${step} failed in ${clone}:\n${tail(result)}`);
    }
    const jest = timed(`jest (${run.length} suites)`, () => sh("npx", ["jest", "--ci", "--runTestsByPath", ...run.map((r) => `__tests__/${r.suite}`)]));
    console.log(`standalone clone: ${timings.join(", ")}`);
    const output = jest.stderr + jest.stdout;
    if (jest.status !== 0) throw new Error(`jest failed in ${clone}:\n${tail(jest)}`);
    expect(output).toMatch(/Tests:\s+.*\d+ passed/);
    expect(output).not.toMatch(/Tests:.*failed/);
    // Every chosen suite was run, and none was skipped for want of something beside the clone.
    expect(output).toMatch(new RegExp(`Test Suites:.* ${run.length} total`));
    expect(output.split("\n").filter((line) => /SKIPPED/.test(line) && /\bshared\b/.test(line))).toEqual([]);
  }, 30 * 60_000);
});
