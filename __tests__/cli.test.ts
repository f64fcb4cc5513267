import { spawnSync } from "node:child_process";
import * as path from "node:path";

const root = path.resolve(__dirname, "..");

/** Runs main.ts the way `cdktf synth` does, with only the given settings. */
function runApp(env: Record<string, string>) {
  const outdir = path.join(require("node:os").tmpdir(), `cli-test-${process.pid}`);
  try {
    return spawnSync(process.execPath, [require.resolve("ts-node/dist/bin.js"), "--transpile-only", "main.ts"], {
      cwd: root,
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", CDKTF_OUTDIR: outdir, ...env },
      encoding: "utf8",
      timeout: 120_000,
    });
  } finally {
    require("node:fs").rmSync(outdir, { recursive: true, force: true });
  }
}

test("bad settings stop synth with every problem named and no stack trace", () => {
  const result = runApp({ WORKER_COUNT: "abc", CONTROL_PLANE_COUNT: "2", CLUSTER_IPV6_BLOCK: "10.0.0.0/8", CLUSTER_NAME: "Bad_Name!" });
  expect(result.status).toBe(1);
  expect(result.stderr).toContain("WORKER_COUNT=abc is not valid");
  expect(result.stderr).toContain("CONTROL_PLANE_COUNT=2 is not valid");
  expect(result.stderr).toContain("CLUSTER_IPV6_BLOCK=10.0.0.0/8 is not valid");
  expect(result.stderr).toContain("CLUSTER_NAME=Bad_Name! is not valid");
  expect(result.stderr).not.toMatch(/^\s+at /m);
});

test("with no settings at all the app synthesizes (no credentials needed)", () => {
  const result = runApp({});
  expect(result.stderr).toBe("");
  expect(result.status).toBe(0);
});
