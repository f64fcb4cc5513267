/**
 * Reading rendered Ignition configs back the way Ignition does, and running the real
 * tools on them. Decoding is written independently of ignition/node-files.ts.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { gunzipSync, gzipSync } from "node:zlib";

export interface IgnFile {
  path: string;
  mode?: number;
  contents?: { source: string; compression?: string; verification?: { hash: string } };
}
export interface IgnUnit {
  name: string;
  enabled?: boolean;
  mask?: boolean;
  contents?: string;
  dropins?: { name: string; contents: string }[];
}
export interface IgnConfig {
  ignition: { version: string; config?: { merge?: { source: string; compression?: string }[] } };
  storage?: { files?: IgnFile[]; directories?: unknown[]; links?: unknown[] };
  systemd?: { units?: IgnUnit[] };
}

/** RFC 2397 decoding: `data:[<mediatype>][;base64],<data>`. */
export function decodeDataUrl(source: string, compression?: string): Buffer {
  const match = /^data:([^,]*),(.*)$/s.exec(source);
  if (!match) throw new Error(`not a data URL: ${source.slice(0, 60)}`);
  const isBase64 = match[1].split(";").includes("base64");
  let bytes: Buffer;
  if (isBase64) {
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(match[2])) throw new Error(`invalid base64 in data URL: ${match[2].slice(0, 60)}`);
    bytes = Buffer.from(match[2], "base64");
  } else {
    bytes = Buffer.from(decodeURIComponent(match[2]), "utf8");
  }
  return compression === "gzip" ? gunzipSync(bytes) : bytes;
}

/**
 * A config with the configs it merges (`ignition.config.merge`, `data:` sources only)
 * folded in, as Ignition applies them: the merged configs' files, directories, links
 * and units, then the config's own. User data is packed that way (one gzip'd merged
 * config, ignition/user-data.ts); a path or a unit's contents defined twice throws,
 * since the order Ignition merges in would then decide.
 */
export function unpackMerges(config: IgnConfig): IgnConfig {
  const merged = (config.ignition.config?.merge ?? []).map((r) => unpackMerges(JSON.parse(decodeDataUrl(r.source, r.compression).toString("utf8")) as IgnConfig));
  const all = [...merged, config];
  const fileList = all.flatMap((c) => c.storage?.files ?? []);
  const paths = fileList.map((f) => f.path);
  const twice = paths.filter((p, i) => paths.indexOf(p) !== i);
  if (twice.length > 0) throw new Error(`paths defined by both a merged config and its parent: ${twice.join(", ")}`);
  const units = all.flatMap((c) => c.systemd?.units ?? []);
  const names = units.filter((u) => u.contents !== undefined).map((u) => u.name);
  const unitsTwice = names.filter((n, i) => names.indexOf(n) !== i);
  if (unitsTwice.length > 0) throw new Error(`unit contents defined twice across merged configs: ${unitsTwice.join(", ")}`);
  const directories = all.flatMap((c) => c.storage?.directories ?? []);
  const links = all.flatMap((c) => c.storage?.links ?? []);
  return {
    ignition: { version: config.ignition.version },
    storage: {
      ...(fileList.length > 0 ? { files: fileList } : {}),
      ...(directories.length > 0 ? { directories } : {}),
      ...(links.length > 0 ? { links } : {}),
    },
    ...(units.length > 0 ? { systemd: { units } } : {}),
  };
}

/**
 * A packed config with the remote file sources inside its merged configs blanked
 * (`data:,`), for reference/tools/ignition-apply-check.sh: it runs offline and blanks
 * the top-level ones itself, but cannot see into a gzip'd merged config. The merged
 * config is re-gzip'd here; Ignition still fetches, decompresses and merges it for real.
 * Callers assert the remote sources' hashes on the unpacked config.
 */
export function offline(config: IgnConfig): IgnConfig {
  const blank = (f: IgnFile): IgnFile => (f.contents && !f.contents.source.startsWith("data:") ? { ...f, contents: { source: "data:," } } : f);
  const merge = (config.ignition.config?.merge ?? []).map((m) => {
    const inner = JSON.parse(decodeDataUrl(m.source, m.compression).toString("utf8")) as IgnConfig;
    const blanked = { ...inner, storage: { ...inner.storage, files: files(inner).map(blank) } };
    return { source: `data:;base64,${gzipSync(JSON.stringify(blanked)).toString("base64")}`, compression: "gzip" };
  });
  return { ...config, ignition: { ...config.ignition, config: { merge } } };
}

export function files(config: IgnConfig): IgnFile[] {
  return config.storage?.files ?? [];
}

export function file(config: IgnConfig, filePath: string): IgnFile {
  const found = files(config).filter((f) => f.path === filePath);
  if (found.length !== 1) throw new Error(`expected one file ${filePath}, found ${found.length}`);
  return found[0];
}

export function fileText(config: IgnConfig, filePath: string): string {
  const f = file(config, filePath);
  if (!f.contents) throw new Error(`${filePath} has no contents`);
  return decodeDataUrl(f.contents.source, f.contents.compression).toString("utf8");
}

export function unit(config: IgnConfig, name: string): IgnUnit {
  const found = (config.systemd?.units ?? []).filter((u) => u.name === name);
  if (found.length !== 1) throw new Error(`expected one unit ${name}, found ${found.length}`);
  return found[0];
}

/** Values of `key=` lines in one section of a unit file (systemd syntax; space-separated lists joined). */
export function unitValues(unitText: string, section: string, key: string): string[] {
  const values: string[] = [];
  let current = "";
  for (const raw of unitText.split("\n")) {
    const line = raw.trim();
    if (line.startsWith("[")) current = line;
    else if (current === `[${section}]` && line.startsWith(`${key}=`)) values.push(...line.slice(key.length + 1).split(/\s+/).filter(Boolean));
  }
  return values;
}

export function hasCommand(name: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${name}`]).status === 0;
}

/** The Debian package that brings each system tool the tests call (.ci/run installs them all). */
const DEBIAN_PACKAGE: Readonly<Record<string, string>> = {
  "ignition-validate": "ignition",
  "systemd-analyze": "systemd",
  systemctl: "systemd",
  jq: "jq",
  unshare: "util-linux",
  useradd: "passwd",
  ip: "iproute2",
  openssl: "openssl",
  python3: "python3-yaml",
  tayga: "tayga",
  nft: "nftables",
  dig: "dnsutils",
  curl: "curl",
};

/** The Debian packages .ci/run installs (its apt_packages list, read from the script itself). */
function ciPackages(): Set<string> {
  try {
    const script = fs.readFileSync(path.join(__dirname, "..", "..", ".ci", "run"), "utf8");
    return new Set((/^apt_packages=\(([^)]*)\)/m.exec(script)?.[1] ?? "").split(/\s+/).filter(Boolean));
  } catch {
    return new Set();
  }
}

/** How to get the missing tools, for skip messages: `apt-get install <packages>`, and whether CI has them. */
export function installHint(missing: readonly string[]): string {
  const packages = [...new Set(missing.map((t) => DEBIAN_PACKAGE[t] ?? t))];
  const ci = ciPackages();
  const notInCi = packages.filter((p) => !ci.has(p));
  const where =
    notInCi.length === 0
      ? "or run .ci/run --system-packages-only as root; CI always has them"
      : `.ci/run does not install ${notInCi.join(", ")}: add it to apt_packages there so CI runs this check`;
  return `install with: apt-get install ${packages.join(" ")} (${where})`;
}

/** `describe` when the tools exist, else a loudly skipped block that says how to install them. */
export function describeWithTools(tools: readonly string[], name: string, body: () => void): void {
  const missing = tools.filter((t) => !hasCommand(t));
  if (missing.length === 0) {
    describe(name, body);
    return;
  }
  // eslint-disable-next-line no-console
  console.warn(`SKIPPED "${name}": missing ${missing.join(", ")}; ${installHint(missing)}`);
  describe.skip(`${name} [SKIPPED: missing ${missing.join(", ")}]`, body);
}

/** Every temp folder tempDir made in this test file, removed after its last test. */
const madeTempDirs: string[] = [];

/** Removes every folder tempDir has made in this test file so far. */
export function removeTempDirs(): void {
  for (const dir of madeTempDirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
}

// Registered when a test file first imports this module (top level, where jest allows hooks).
if (typeof afterAll === "function") afterAll(removeTempDirs);

/**
 * A new folder in the temp folder, named `v6fabric-test-<what>-XXXXXX` so a leftover
 * says which test made it, and removed after the test file's last test (the jest
 * teardown fails the run if any test folder is left: support/temp-root.js).
 */
export function tempDir(what: string): string {
  const name = what.replace(/^v6fabric-/, "").replace(/-?$/, "-");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `v6fabric-test-${name}`));
  madeTempDirs.push(dir);
  return dir;
}

/** Runs ignition-validate on `json`; returns its combined output and exit status. */
export function ignitionValidate(json: string): { status: number; output: string } {
  const dir = tempDir("ign-validate");
  const f = path.join(dir, "config.ign");
  fs.writeFileSync(f, json);
  const result = spawnSync("ignition-validate", [f], { encoding: "utf8" });
  fs.rmSync(dir, { recursive: true, force: true });
  return { status: result.status ?? -1, output: `${result.stdout}${result.stderr}`.trim() };
}
