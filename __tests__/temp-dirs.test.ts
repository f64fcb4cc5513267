/**
 * Test runs leave nothing in the temp folder: jest's globalSetup points TMPDIR at one
 * folder per run and its teardown fails the run if a test left anything there
 * (support/temp-root.js). These check that the redirection really reaches the tests and
 * the tools they start, and that the helpers clean up after themselves.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { removeTempDirs, tempDir } from "./support/ignition";

const runDir = process.env.V6FABRIC_TEST_TMPDIR;

test("jest's globalSetup gave this worker its run folder as the temp folder", () => {
  expect(runDir).toMatch(/\/v6fabric-jest-\d+-[^/]+$/);
  expect(os.tmpdir()).toBe(runDir);
  expect(fs.statSync(runDir!).isDirectory()).toBe(true);
});

test("tools a test starts with the inherited environment use it too (mktemp)", () => {
  const made = spawnSync("mktemp", ["-d"], { encoding: "utf8" }).stdout.trim();
  try {
    expect(path.dirname(made)).toBe(runDir);
  } finally {
    fs.rmSync(made, { recursive: true, force: true });
  }
});

test("tempDir names its folders v6fabric-test-<what>-* and removes them after the file's tests", () => {
  const a = tempDir("temp-dirs-check");
  const b = tempDir("v6fabric-temp-dirs-check-");
  for (const dir of [a, b]) expect(path.basename(dir)).toMatch(/^v6fabric-test-temp-dirs-check-[A-Za-z0-9]{6}$/);
  fs.writeFileSync(path.join(a, "file"), "x");
  removeTempDirs();
  expect([fs.existsSync(a), fs.existsSync(b)]).toEqual([false, false]);
});

test("the teardown's check fails on every leftover but tool caches, and catches test folders outside the run folder", () => {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { closeRunDir, listTestEntries } = require("./support/temp-root");
  const parent = tempDir("teardown-check");
  const run = (names: string[]) => {
    const dir = fs.mkdtempSync(path.join(parent, "v6fabric-jest-"));
    for (const n of names) fs.mkdirSync(path.join(dir, n));
    return dir;
  };
  const clean = run([]);
  expect(closeRunDir(clean, parent, new Set(listTestEntries(parent)))).toEqual({ problems: [] });
  expect(fs.existsSync(clean)).toBe(false);

  const leaky = run(["v6fabric-test-node-abc123", "cli-test-42", "v8-compile-cache-0", "jest_0"]);
  const result = closeRunDir(leaky, parent, new Set());
  expect(result.problems).toEqual([expect.stringContaining("left 2 entries in their temp folder (removed now): cli-test-42, v6fabric-test-node-abc123")]);
  expect(fs.existsSync(leaky)).toBe(false);

  const before = new Set(listTestEntries(parent));
  fs.mkdirSync(path.join(parent, "v6fabric-test-synth-xyz987"));
  fs.mkdirSync(path.join(parent, "v6fabric-rehearsal-unrelated")); // a script's folder, not the tests'
  expect(closeRunDir(run([]), parent, before).problems).toEqual([expect.stringContaining("ignored TMPDIR: v6fabric-test-synth-xyz987")]);
});

test("a run folder whose jest process is gone (killed before its teardown) is removed by the next run; a live one is kept", () => {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { removeFoldersOfDeadRuns } = require("./support/temp-root");
  const parent = tempDir("dead-runs");
  const dead = spawnSync("sh", ["-c", "echo $$"], { encoding: "utf8" }).stdout.trim(); // a pid that has exited
  for (const name of [`v6fabric-jest-${dead}-abc123`, `v6fabric-jest-${process.pid}-def456`, "v6fabric-jest-nopid", "other"]) fs.mkdirSync(path.join(parent, name));
  removeFoldersOfDeadRuns(parent);
  expect(fs.readdirSync(parent).sort()).toEqual(["other", `v6fabric-jest-${process.pid}-def456`, "v6fabric-jest-nopid"].sort());
});

const asRoot = process.getuid?.() === 0 ? test : test.skip;
asRoot("a dead run's folder that still holds a mount (a killed rehearsal) is left alone, not removed through the mount", () => {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { removeFoldersOfDeadRuns } = require("./support/temp-root");
  const parent = tempDir("dead-mounted");
  const dead = spawnSync("sh", ["-c", "echo $$"], { encoding: "utf8" }).stdout.trim();
  const folder = path.join(parent, `v6fabric-jest-${dead}-mnt001`);
  const mountPoint = path.join(folder, "node-root");
  fs.mkdirSync(mountPoint, { recursive: true });
  expect(spawnSync("mount", ["-t", "tmpfs", "tmpfs", mountPoint]).status).toBe(0);
  try {
    fs.writeFileSync(path.join(mountPoint, "kept"), "x");
    const warn = jest.spyOn(console, "warn").mockImplementation(() => undefined);
    try {
      removeFoldersOfDeadRuns(parent);
      expect(warn).toHaveBeenCalledWith(expect.stringContaining("still has 1 mount(s)"));
    } finally {
      warn.mockRestore();
    }
    expect(fs.readFileSync(path.join(mountPoint, "kept"), "utf8")).toBe("x");
  } finally {
    spawnSync("umount", [mountPoint]);
  }
  removeFoldersOfDeadRuns(parent);
  expect(fs.existsSync(folder)).toBe(false);
});
