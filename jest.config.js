/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: "node",
  roots: ["<rootDir>/__tests__"],
  testMatch: ["**/*.test.ts"],
  transform: { "^.+\\.ts$": "ts-jest" },
  // Synth and the real-tool checks (ignition, systemd-analyze) take seconds each.
  testTimeout: 120000,
  setupFiles: ["<rootDir>/__tests__/support/env.ts"],
};
