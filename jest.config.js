/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: "node",
  roots: ["<rootDir>/__tests__"],
  testMatch: ["**/*.test.ts"],
  transform: { "^.+\\.ts$": "ts-jest" },
  // Synth and the real-tool checks (ignition, systemd-analyze) take seconds each.
  testTimeout: 120000,
  // Two suites at a time, also on 2 cores (jest would run one): the rehearsals mostly wait
  // on the clusters they run, and the fabric rehearsal alone takes a quarter hour, so the
  // other suites run beside it (docs/testing.md, "CI time").
  maxWorkers: 2,
  setupFiles: ["<rootDir>/__tests__/support/env.ts"],
  // One temp folder per run (TMPDIR for every worker and the tools tests start); the
  // teardown fails the run when a test leaves anything in it (support/temp-root.js).
  globalSetup: "<rootDir>/__tests__/support/global-setup.js",
  globalTeardown: "<rootDir>/__tests__/support/global-teardown.js",
};
