/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: "node",
  roots: ["<rootDir>/__tests__"],
  testMatch: ["**/*.test.ts"],
  transform: { "^.+\\.ts$": "ts-jest" },
  // Synth and the real-tool checks (ignition, systemd-analyze) take seconds each.
  testTimeout: 120000,
  setupFiles: ["<rootDir>/__tests__/support/env.ts"],
  // One temp folder per run (TMPDIR for every worker and the tools tests start); the
  // teardown fails the run when a test leaves anything in it (support/temp-root.js).
  globalSetup: "<rootDir>/__tests__/support/global-setup.js",
  globalTeardown: "<rootDir>/__tests__/support/global-teardown.js",
};
