/**
 * A user's clone, or a GitHub runner's checkout, has nothing beside it: no ../shared,
 * no build output, no untracked file of this working tree. This test clones the
 * repository into an empty temporary folder and runs what the README tells a new user
 * to run, `npm ci && npm test`, there. It only sees committed files: commit first.
 *
 * The nested run sets V6FABRIC_STANDALONE_CLONE so it does not clone itself again.
 * Set V6FABRIC_SKIP_STANDALONE_CLONE=1 to leave it out of a quick local run.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

const repo = path.resolve(__dirname, "..");
const nested = process.env.V6FABRIC_STANDALONE_CLONE === "1";
const optedOut = process.env.V6FABRIC_SKIP_STANDALONE_CLONE === "1";
const isGitCheckout = fs.existsSync(path.join(repo, ".git"));

if (optedOut) console.warn("SKIPPED standalone clone: V6FABRIC_SKIP_STANDALONE_CLONE=1 (CI never sets it)");
else if (!isGitCheckout) console.warn(`SKIPPED standalone clone: ${repo} is not a git checkout`);
const describeClone = nested || optedOut || !isGitCheckout ? describe.skip : describe;

describeClone("a clone with nothing beside it", () => {
  let parent: string;
  beforeAll(() => {
    parent = fs.mkdtempSync(path.join(os.tmpdir(), "v6fabric-alone-"));
  });
  afterAll(() => {
    if (parent) fs.rmSync(parent, { recursive: true, force: true });
  });

  test("npm ci && npm test pass", () => {
    const clone = path.join(parent, "app");
    const git = spawnSync("git", ["clone", "--quiet", "--no-local", repo, clone], { encoding: "utf8" });
    expect(git.stderr).toBe("");
    expect(git.status).toBe(0);
    expect(fs.readdirSync(parent)).toEqual(["app"]);

    const env = { ...process.env, V6FABRIC_STANDALONE_CLONE: "1", CI: "true" };
    const result = spawnSync("bash", ["-c", "npm ci --no-audit --no-fund --prefer-offline && npm test"], {
      cwd: clone,
      env,
      encoding: "utf8",
      maxBuffer: 64 * 1024 * 1024,
    });
    const tail = `${result.stdout}\n${result.stderr}`.split("\n").slice(-60).join("\n");
    if (result.status !== 0) throw new Error(`npm ci && npm test failed in ${clone}:\n${tail}`);
    expect(result.stderr + result.stdout).toMatch(/Tests:\s+.*\d+ passed/);
    expect(result.stderr + result.stdout).not.toMatch(/Tests:.*failed/);
  }, 30 * 60_000);
});
