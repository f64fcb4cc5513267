/**
 * Pinned sources (rehearsal/pinned-sources.ts): a source is built only when it is the
 * pinned bytes or the pinned commit, a machine without it is told what to put where,
 * and the pull-request workflow checks out each pinned repository at its commit.
 * These run with temporary folders only; nothing here needs ../shared.
 */
import { spawnSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import YAML from "yaml";
import { PINNED_SOURCES, PinnedSource, locateSource, missingSourceAdvice, pinnedSourcesDir, unpackSource } from "../rehearsal/pinned-sources";
import { PROVIDERS } from "../rehearsal/tools";

const work = fs.mkdtempSync(path.join(os.tmpdir(), "v6fabric-pinned-sources-"));
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

function sh(command: string, args: string[], cwd?: string): string {
  const r = spawnSync(command, args, { cwd, encoding: "utf8", env: { ...process.env, GIT_AUTHOR_NAME: "t", GIT_AUTHOR_EMAIL: "t@example.org", GIT_COMMITTER_NAME: "t", GIT_COMMITTER_EMAIL: "t@example.org" } });
  if (r.status !== 0) throw new Error(`${command} ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

/** A tiny source tree `demo-1.0/` packed as a tarball in `dir`, and the pin that names it. */
function demoSource(dir: string): PinnedSource {
  fs.mkdirSync(path.join(dir, "tree", "demo-1.0"), { recursive: true });
  fs.writeFileSync(path.join(dir, "tree", "demo-1.0", "go.mod"), "module example.org/demo\n\ngo 1.24\n");
  sh("tar", ["-czf", path.join(dir, "demo-1.0.tar.gz"), "-C", path.join(dir, "tree"), "demo-1.0"]);
  const sha256 = crypto.createHash("sha256").update(fs.readFileSync(path.join(dir, "demo-1.0.tar.gz"))).digest("hex");
  return { name: "demo", version: "1.0", tarball: "demo-1.0.tar.gz", sha256, repository: "example/demo", commit: "0".repeat(40) };
}

describe("pinned sources", () => {
  test("the metal provider is pinned to tag v3.3.0's commit with a full SHA-256", () => {
    const metal = PINNED_SOURCES.find((s) => s.name === "terraform-provider-metal")!;
    expect(metal).toMatchObject({ version: "3.3.0", repository: "equinix/terraform-provider-metal", commit: "5b6938ab0f6f200cbe414418a0e7f2d5ff988594" });
    expect(metal.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(metal.tarball).toBe("terraform-provider-metal-3.3.0.tar.gz");
  });

  test("the kubernetes provider is pinned to the release commit its @cdktf bindings were generated from, tls built at its bindings' version", () => {
    const byName = Object.fromEntries(PINNED_SOURCES.map((s) => [s.name, s]));
    expect(byName["terraform-provider-kubernetes"]).toMatchObject({ version: "2.38.0", repository: "hashicorp/terraform-provider-kubernetes", commit: "be88f44271050f69d52f410bca388834afedfe71" });
    // The bindings' own record of the provider they were generated from (package.json "cdktf.provider").
    const tls = PROVIDERS.find((p) => p.source === "hashicorp/tls")!;
    for (const [pkg, version] of [["@cdktf/provider-kubernetes", byName["terraform-provider-kubernetes"].version], ["@cdktf/provider-tls", tls.version]] as const) {
      const manifest = JSON.parse(fs.readFileSync(require.resolve(`${pkg}/package.json`), "utf8"));
      expect([pkg, manifest.cdktf.provider.version]).toEqual([pkg, version]);
    }
  });

  test("the folder defaults to ../shared/upstream/sources beside the repository, or V6FABRIC_PINNED_SOURCES", () => {
    expect(pinnedSourcesDir({})).toBe(path.resolve(__dirname, "..", "..", "shared", "upstream", "sources"));
    expect(pinnedSourcesDir({ V6FABRIC_PINNED_SOURCES: "/srv/src" })).toBe("/srv/src");
  });

  test("a tarball with the pinned SHA-256 unpacks; one byte off is refused, naming both hashes", () => {
    const dir = path.join(work, "tarball");
    const pin = demoSource(dir);
    const env = { V6FABRIC_PINNED_SOURCES: dir };
    const out = fs.mkdtempSync(path.join(work, "out-"));
    expect(locateSource(pin, env)).toEqual({ kind: "tarball", file: path.join(dir, "demo-1.0.tar.gz") });
    expect(fs.readFileSync(path.join(unpackSource(pin, out, env), "go.mod"), "utf8")).toContain("example.org/demo");
    const wrong = { ...pin, sha256: `${pin.sha256.slice(0, 63)}${pin.sha256.endsWith("0") ? "1" : "0"}` };
    expect(() => unpackSource(wrong, fs.mkdtempSync(path.join(work, "out-")), env)).toThrow(new RegExp(`SHA-256 ${pin.sha256}, not the pinned ${wrong.sha256}: refusing`));
  });

  test("a checkout is used only at the pinned commit, and wins over the tarball", () => {
    const dir = path.join(work, "checkout");
    const pin = demoSource(dir);
    const tree = path.join(dir, "demo-1.0");
    fs.cpSync(path.join(dir, "tree", "demo-1.0"), tree, { recursive: true });
    sh("git", ["init", "-q"], tree);
    sh("git", ["add", "."], tree);
    sh("git", ["commit", "-q", "-m", "demo"], tree);
    const commit = sh("git", ["rev-parse", "HEAD"], tree).trim();
    const env = { V6FABRIC_PINNED_SOURCES: dir };
    expect(locateSource(pin, env)).toEqual({ kind: "checkout", dir: tree });
    expect(() => unpackSource(pin, fs.mkdtempSync(path.join(work, "out-")), env)).toThrow(`is not a checkout of example/demo at ${"0".repeat(40)} (HEAD: ${commit})`);
    const copied = unpackSource({ ...pin, commit }, fs.mkdtempSync(path.join(work, "out-")), env);
    expect(fs.existsSync(path.join(copied, "go.mod"))).toBe(true);
    expect(fs.existsSync(path.join(copied, ".git"))).toBe(false);
  });

  test("a tree that is not a Go module is recognised by its marker, and a tarball packed under another folder is unpacked as it is", () => {
    const dir = path.join(work, "marker");
    fs.mkdirSync(path.join(dir, "tree", "charts"), { recursive: true });
    fs.writeFileSync(path.join(dir, "tree", "charts", "base.tgz"), "chart");
    sh("tar", ["-czf", path.join(dir, "charts-1.0.tar.gz"), "-C", path.join(dir, "tree"), "charts"]);
    const sha256 = crypto.createHash("sha256").update(fs.readFileSync(path.join(dir, "charts-1.0.tar.gz"))).digest("hex");
    const pin: PinnedSource = { name: "charts", version: "1.0", tarball: "charts-1.0.tar.gz", sha256, repository: "example/charts", commit: "0".repeat(40), tarballFolder: "charts", marker: "manifests/Chart.yaml" };
    const env = { V6FABRIC_PINNED_SOURCES: dir };
    expect(locateSource(pin, env)).toEqual({ kind: "tarball", file: path.join(dir, "charts-1.0.tar.gz") });
    expect(fs.readFileSync(path.join(unpackSource(pin, fs.mkdtempSync(path.join(work, "out-")), env), "base.tgz"), "utf8")).toBe("chart");
    // A checkout is the repository's tree: found by the marker, not by go.mod.
    fs.mkdirSync(path.join(dir, "charts-1.0", "manifests"), { recursive: true });
    fs.writeFileSync(path.join(dir, "charts-1.0", "manifests", "Chart.yaml"), "name: base\n");
    expect(locateSource(pin, env)).toEqual({ kind: "checkout", dir: path.join(dir, "charts-1.0") });
  });

  test("Calico's sources are pinned to their release commits: Calico 3.32.1, the operator 1.42.3 its manifest runs, Istio 1.29.4's charts, BIRD", () => {
    const byName = Object.fromEntries(PINNED_SOURCES.map((s) => [s.name, s]));
    expect(byName.calico).toMatchObject({ version: "3.32.1", repository: "projectcalico/calico", commit: "0ca9d1b93644778cafdf1812f3dda02ac0c361e8" });
    expect(byName["tigera-operator"]).toMatchObject({ version: "1.42.3", repository: "tigera/operator", commit: "40f3e3d35845ec159148b0a726ca069bf104d680" });
    expect(byName["istio-charts"]).toMatchObject({ version: "1.29.4", repository: "istio/istio", commit: "e339c3903bcf276ba1dd83ea98ceebf049e3b385" });
    expect(byName["calico-bird"]).toMatchObject({ repository: "projectcalico/bird", commit: "1e2ff99db42b8f037a51f7a8f7b946a542d96bd1" });
    for (const pin of PINNED_SOURCES) expect(pin.sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  test("without the source, the advice names the repository, the commit, the tarball's hash and both places", () => {
    const pin = PINNED_SOURCES[0];
    const env = { V6FABRIC_PINNED_SOURCES: path.join(work, "nothing-here") };
    expect(locateSource(pin, env)).toBeUndefined();
    const advice = missingSourceAdvice(pin, env);
    expect(advice).toContain(`github.com/${pin.repository} at commit ${pin.commit}`);
    expect(advice).toContain(path.join(work, "nothing-here", `${pin.name}-${pin.version}`));
    expect(advice).toContain(`${pin.tarball} (SHA-256 ${pin.sha256})`);
    expect(() => unpackSource(pin, work, env)).toThrow(advice);
  });

  test("the pull-request workflow checks out every pinned repository at its commit where the tools look", () => {
    const workflow = YAML.parse(fs.readFileSync(path.join(__dirname, "..", ".github", "workflows", "pr.yml"), "utf8"));
    const job = workflow.jobs.review;
    expect(job.env.V6FABRIC_PINNED_SOURCES).toBe("${{ github.workspace }}/.pinned-sources");
    const steps: { uses?: string; run?: string; with?: Record<string, string> }[] = job.steps;
    const tools = steps.findIndex((s) => s.run === "npm run tools");
    for (const pin of PINNED_SOURCES) {
      const at = steps.findIndex((s) => s.with?.repository === pin.repository);
      expect(at).toBeGreaterThan(0);
      expect(at).toBeLessThan(tools);
      expect(steps[at].uses).toMatch(/^actions\/checkout@[0-9a-f]{40}/);
      expect(steps[at].with).toMatchObject({ ref: pin.commit, path: `.pinned-sources/${pin.name}-${pin.version}` });
    }
    expect(fs.readFileSync(path.join(__dirname, "..", ".gitignore"), "utf8")).toMatch(/^\.pinned-sources\/$/m);
  });
});
