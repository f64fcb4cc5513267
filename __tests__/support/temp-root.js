// The test run's own temporary folder (jest globalSetup/globalTeardown, jest.config.js).
//
// globalSetup makes one folder per jest run in the real temp folder and points TMPDIR at
// it before any worker starts, so os.tmpdir() in every test, and in every tool a test
// starts with the inherited environment (bash's mktemp, ignition-validate), lands there.
// globalTeardown lists what is left in it, removes it whatever happens, and fails the
// run when a test left something behind: every test removes what it makes (afterAll or
// finally). Because the listing is of this run's own folder, other processes' temp files,
// and other jest runs on the same machine, can never make it fail or hide a leak.
"use strict";
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");

/** Prefix of the run folder in the real temp folder. */
const RUN_PREFIX = "v6fabric-jest-";
/** Prefix of every temp folder the tests make (support/ignition.ts tempDir, support/synth.ts). */
const TEST_PREFIX = "v6fabric-test-";

/**
 * Caches that programs the tests start keep in the temp folder on purpose, for the next
 * run. Inside the run folder they are harmless and go with it: not a test's leftover.
 */
const TOOL_CACHES = [
  // ts-node (the tests run main.ts with it) compiles through v8-compile-cache-lib, which
  // keeps v8-compile-cache-<uid> in os.tmpdir().
  /^v8-compile-cache(-\d+)?$/,
  // jest keeps its transform cache in os.tmpdir()/jest_<uid>: the nested `npm test` of
  // the standalone-clone test inherits this run's TMPDIR and writes it here.
  /^jest_\w+$/,
];

function globalSetup() {
  const parent = os.tmpdir();
  removeFoldersOfDeadRuns(parent);
  // The pid in the name lets a later run remove the folder of a run that was killed
  // before its teardown (a timeout, Ctrl-C).
  const runDir = fs.mkdtempSync(path.join(parent, `${RUN_PREFIX}${process.pid}-`));
  process.env.V6FABRIC_TEST_TMP_PARENT = parent;
  process.env.V6FABRIC_TEST_TMPDIR = runDir;
  process.env.V6FABRIC_TEST_TMPDIR_WAS = process.env.TMPDIR ?? "";
  process.env.TMPDIR = runDir;
  // What the real temp folder held before the run, to catch a tool that ignores TMPDIR.
  globalThis.__v6fabricTempBefore = new Set(listTestEntries(parent));
}

function globalTeardown() {
  const runDir = process.env.V6FABRIC_TEST_TMPDIR;
  const parent = process.env.V6FABRIC_TEST_TMP_PARENT;
  if (!runDir || !parent) return;
  let result;
  try {
    result = closeRunDir(runDir, parent, globalThis.__v6fabricTempBefore ?? new Set());
  } finally {
    if (process.env.V6FABRIC_TEST_TMPDIR_WAS) process.env.TMPDIR = process.env.V6FABRIC_TEST_TMPDIR_WAS;
    else delete process.env.TMPDIR;
  }
  if (result.problems.length > 0) throw new Error(result.problems.join("\n"));
}

/**
 * Lists what is left in `runDir`, removes it, and says what is wrong: leftovers (tool
 * caches aside), and test folders that appeared in `parent` itself since `before` (a
 * tool that ignored TMPDIR).
 */
function closeRunDir(runDir, parent, before) {
  let left = [];
  try {
    left = fs.readdirSync(runDir).sort();
  } finally {
    fs.rmSync(runDir, { recursive: true, force: true });
  }
  const unknown = left.filter((name) => !TOOL_CACHES.some((re) => re.test(name)));
  const outside = listTestEntries(parent).filter((name) => !before.has(name));
  const problems = [];
  if (unknown.length > 0) {
    problems.push(
      `the tests left ${unknown.length} entr${unknown.length === 1 ? "y" : "ies"} in their temp folder (removed now): ${unknown.join(", ")}; remove each in afterAll or finally where it is made`,
    );
  }
  if (outside.length > 0) problems.push(`test temp folders appeared in ${parent} itself, so something ignored TMPDIR: ${outside.join(", ")}`);
  return { problems };
}

/** Removes run folders whose jest process is gone (killed before its teardown). */
function removeFoldersOfDeadRuns(parent) {
  let names = [];
  try {
    names = fs.readdirSync(parent);
  } catch {
    return;
  }
  for (const name of names) {
    const m = new RegExp(`^${RUN_PREFIX}(\\d+)-`).exec(name);
    if (!m || isAlive(Number(m[1]))) continue;
    const folder = path.join(parent, name);
    // A killed rehearsal can leave mounts (node roots, network namespaces) in its folder.
    // Removing through a mount would reach what is mounted, so such a folder is left to
    // the rehearsal's reaper (rehearsal/nodes.ts reapStaleFabrics) and a later run.
    const mounted = mountPointsUnder(folder);
    if (mounted.length > 0) {
      console.warn(`temp-root: ${folder} of a dead run still has ${mounted.length} mount(s), e.g. ${mounted[0]}; left for the rehearsal's reaper`);
      continue;
    }
    try {
      fs.rmSync(folder, { recursive: true, force: true });
    } catch (error) {
      console.warn(`temp-root: could not remove ${folder} of a dead run: ${error.message}`);
    }
  }
}

/** Mount points at or below `dir` (from /proc/self/mountinfo; octal escapes as the kernel writes them). */
function mountPointsUnder(dir) {
  let text = "";
  try {
    text = fs.readFileSync("/proc/self/mountinfo", "utf8");
  } catch {
    return [];
  }
  return text
    .split("\n")
    .map((line) => (line.split(" ")[4] ?? "").replace(/\\([0-7]{3})/g, (_m, o) => String.fromCharCode(parseInt(o, 8))))
    .filter((point) => point === dir || point.startsWith(`${dir}/`));
}

function isAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return error.code === "EPERM";
  }
}

/** Entries of `dir` that only the tests make (not other runs' folders, not the scripts'). */
function listTestEntries(dir) {
  try {
    return fs.readdirSync(dir).filter((name) => name.startsWith(TEST_PREFIX));
  } catch {
    return [];
  }
}

module.exports = { RUN_PREFIX, TEST_PREFIX, TOOL_CACHES, globalSetup, globalTeardown, closeRunDir, listTestEntries, removeFoldersOfDeadRuns };
