/**
 * Each role's synthesized config applied with the real ignition binary to a scratch
 * root, then `systemd-analyze verify` on the units it wrote
 * (reference/tools/ignition-apply-check.sh). Needs root and the tools CI installs.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { BootRole } from "../ignition";
import { decodeDataUrl, files, hasCommand, IgnConfig, installHint, offline, tempDir, unpackMerges } from "./support/ignition";
import { referencePath } from "./support/reference";
import { onlyStack, resourcesOf, synthesize } from "./support/synth";
import { resolveTerraformRefs } from "./support/terraform-refs";

/**
 * What the check may leave unchecked, each with the reason it is acceptable. Anything
 * else it reports as unchecked fails the test.
 */
const TOLERATED: { pattern: RegExp; reason: string }[] = [
  {
    pattern: /^remote source not fetched\/verified .*storage\.files\.\d+\.contents\.source +https:\/\/\S+$/,
    reason: "offline: remote files are not downloaded; this test asserts each has a verification hash, which Ignition checks on the node",
  },
  {
    pattern: /^enable containerd\.service: unit file not in scratch root \(Flatcar-provided\?\); enablement not simulated$/,
    reason: "containerd.service ships with Flatcar (its containerd sysext), not with this config",
  },
  {
    pattern: /^Exec binary \/usr\/bin\/env not written by the config; assumed present at runtime \(stubbed for verify\)$/,
    reason: "/usr/bin/env is part of Flatcar's read-only /usr (coreutils); the control-plane address unit (lib/kubeadm.ts) runs `ip` through it",
  },
  {
    pattern: /^Exec binary \/opt\/bin\/tayga not written by the config; assumed present at runtime \(stubbed for verify\)$/,
    reason: "the nat64 unit's ExecStartPre script unpacks tayga from the pinned .deb Ignition downloads (its hash is checked by Ignition); the NAT64 rehearsal runs that script",
  },
  {
    pattern: /^YAML files are only parsed, not checked against their schema/,
    reason: "the kubeadm and Calico documents are schema-checked in ignition-synth.test.ts",
  },
];

const ROLES: BootRole[] = ["init", "control-plane", "worker"];

/** Each role's user data after Terraform (packed: a gzip'd merged boot config and the apply-time files). */
function configsByRole(): Record<BootRole, IgnConfig> {
  const stack = onlyStack(synthesize({ CONTROL_PLANE_COUNT: "3", WORKER_COUNT: "5" }));
  const out: Partial<Record<BootRole, IgnConfig>> = {};
  for (const [, body] of resourcesOf(stack, "metal_device")) {
    const role: BootRole = /-cp-1$/.test(body.hostname) ? "init" : /-cp-/.test(body.hostname) ? "control-plane" : "worker";
    out[role] ??= JSON.parse(resolveTerraformRefs(body.user_data).text) as IgnConfig;
  }
  return out as Record<BootRole, IgnConfig>;
}

const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
const tool = referencePath("tools", "ignition-apply-check.sh");
const missing = ["ignition-validate", "jq", "systemd-analyze"].filter((t) => !hasCommand(t));

describe("ignition-apply-check: every role applies and its units verify", () => {
  if (!isRoot || missing.length > 0) {
    // eslint-disable-next-line no-console
    console.warn(`SKIPPED ignition-apply-check: ${!isRoot ? "not root (the real ignition binary chowns files; run the tests as root, as CI does)" : `missing ${missing.join(", ")}; ${installHint(missing)}`}`);
    it.skip("needs root and ignition, jq, systemd", () => undefined);
    return;
  }
  const configs = configsByRole();

  it.each(ROLES)("%s", (role) => {
    const packed = configs[role];
    // Everything the node gets: the merged boot config's files and units, then the user data's own.
    const config = unpackMerges(packed);
    expect(packed.ignition.config?.merge).toHaveLength(1);
    // The check skips remote sources; every one must carry a hash Ignition verifies on the node.
    const remote = files(config).filter((f) => !f.contents?.source.startsWith("data:"));
    expect(remote.length).toBeGreaterThanOrEqual(3);
    for (const f of remote) expect({ path: f.path, hash: f.contents?.verification?.hash }).toEqual({ path: f.path, hash: expect.stringMatching(/^sha(256|512)-[0-9a-f]+$/) });

    const dir = tempDir("apply");
    const file = path.join(dir, `${role}.ign`);
    fs.writeFileSync(file, JSON.stringify(offline(packed)));
    const work = path.join(dir, "work");
    fs.mkdirSync(work);
    const result = spawnSync("bash", [tool, "--keep", `--workdir=${work}`, file], { encoding: "utf8", timeout: 300_000 });
    const output = `${result.stdout}${result.stderr}`;
    expect({ role, status: result.status, problems: output.split("\n").filter((l) => l.startsWith("PROBLEM")) }).toEqual({ role, status: 0, problems: [] });
    expect(output).toContain("RESULT: OK");
    expect(output).toContain("verify: OK");

    const unchecked = sectionLines(output, "not checked offline:");
    const untolerated = unchecked.filter((line) => !TOLERATED.some((t) => t.pattern.test(line)));
    expect(untolerated).toEqual([]);
    // Units this config writes were enabled by the preset, and locksmithd is masked.
    expect(output).toMatch(/multi-user\.target\.wants\/kubelet\.service -> \/etc\/systemd\/system\/kubelet\.service/);
    expect(output).toMatch(/multi-user\.target\.wants\/v6fabric-kubeadm\.service/);
    expect(output).toContain("locksmithd.service -> /dev/null (masked)");

    // What Ignition wrote is what the config meant: every inline file, from the merged
    // boot config (gzip'd as a whole) or the user data's own (PEMs come from Terraform's
    // base64gzip(), here the placeholder's gzip), byte for byte as this test decodes it.
    const [scratch] = fs.readdirSync(work).filter((n) => n.startsWith("ign-check."));
    const root = path.join(work, scratch, "root");
    const inline = files(config).filter((f) => f.contents?.source.startsWith("data:"));
    expect(inline.filter((f) => f.contents?.compression === "gzip" && /\.(crt|key|pub)$/.test(f.path)).length).toBeGreaterThanOrEqual(1);
    for (const f of inline) {
      const written = fs.readFileSync(path.join(root, f.path));
      expect({ path: f.path, same: written.equals(decodeDataUrl(f.contents!.source, f.contents!.compression)) }).toEqual({ path: f.path, same: true });
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

/** The "  - ..." lines after `heading` in the check's summary. */
function sectionLines(output: string, heading: string): string[] {
  const lines = output.split("\n");
  const start = lines.findIndex((l) => l.trim() === heading);
  if (start < 0) return [];
  const out: string[] = [];
  for (const line of lines.slice(start + 1)) {
    const m = /^\s+- (.*)$/.exec(line);
    if (!m) break;
    out.push(m[1].trim());
  }
  return out;
}
