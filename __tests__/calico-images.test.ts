/**
 * Calico's images (rehearsal/calico-images.ts), as `npm run tools -- calico` made them:
 * each archive is named as the pinned operator names its images (asked of the operator
 * program inside its own image, and of Calico 3.32.1's manifest for the operator itself),
 * and the programs inside run: BIRD, calico-node and the Debian tools in calico-node's
 * image root, iptables and conntrack in kube-proxy's, each with its libraries resolved,
 * run with chroot in the unpacked layer; and calico-node's, the CNI plugin's and the
 * operator's images imported into the rehearsal's containerd and run by runc. Running
 * them under the kubelet with the operator's pod specs is the cluster rehearsal's part.
 */
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import YAML from "yaml";
import { calicoImageArchiveDir, calicoImages } from "../rehearsal/calico-images";
import { containerdBinary, imageArchiveDir, toolsPresent, toolsUnavailable } from "../rehearsal/tools";
import { hasCommand } from "./support/ignition";

const root = typeof process.getuid === "function" && process.getuid() === 0;
const why = !root
  ? "not root (the layers keep their owners, and chroot needs root; CI runs as root)"
  : !hasCommand("chroot")
    ? "chroot is missing (coreutils)"
    : !toolsPresent(["calico"])
      ? `Calico's images are not built: ${toolsUnavailable(["calico"]) ?? "run `npm run tools -- calico`"}`
      : "";
if (why) console.warn(`SKIPPED Calico images: ${why}`);
const describeImages = why ? describe.skip : describe;

let work: string;
beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), "v6fabric-test-calico-images-"));
});
afterAll(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

function sh(command: string, args: readonly string[]): { status: number | null; out: string } {
  const r = spawnSync(command, [...args], { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  return { status: r.status, out: `${r.stdout ?? ""}${r.stderr ?? ""}` };
}

const sha256 = (bytes: Buffer) => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;

interface Unpacked {
  readonly reference: string;
  readonly config: { Env?: string[]; Entrypoint?: string[]; Cmd?: string[]; User?: string; WorkingDir?: string };
  readonly rootfs: string;
}

/** Unpacks an archive with tar, checks every blob against its digest, and unpacks its one layer. */
function unpack(archive: string): Unpacked {
  const dir = fs.mkdtempSync(path.join(work, `${path.basename(archive, ".tar")}-`));
  const layout = path.join(dir, "layout");
  fs.mkdirSync(layout);
  expect(sh("tar", ["-xf", archive, "-C", layout]).status).toBe(0);
  const blob = (digest: string) => fs.readFileSync(path.join(layout, "blobs", "sha256", digest.replace("sha256:", "")));
  const entry = JSON.parse(fs.readFileSync(path.join(layout, "index.json"), "utf8")).manifests[0];
  const manifestBytes = blob(entry.digest);
  expect(sha256(manifestBytes)).toBe(entry.digest);
  const manifest = JSON.parse(manifestBytes.toString());
  const config = JSON.parse(blob(manifest.config.digest).toString());
  expect(sha256(blob(manifest.config.digest))).toBe(manifest.config.digest);
  expect(config.rootfs.diff_ids).toEqual([manifest.layers[0].digest]);
  const layerFile = path.join(layout, "blobs", "sha256", manifest.layers[0].digest.replace("sha256:", ""));
  const rootfs = path.join(dir, "rootfs");
  fs.mkdirSync(rootfs);
  expect(sh("tar", ["-xf", layerFile, "--numeric-owner", "-C", rootfs]).status).toBe(0);
  fs.rmSync(layout, { recursive: true });
  return { reference: entry.annotations["io.containerd.image.name"], config: config.config, rootfs };
}

/** Runs a program of the image inside its root, with the image's PATH (an image with no `env` gets a full path). */
function inImage(image: Unpacked, command: readonly string[]): { status: number | null; out: string } {
  if (!fs.existsSync(path.join(image.rootfs, "usr", "bin", "env"))) return sh("chroot", [image.rootfs, ...command]);
  const pathEnv = image.config.Env?.find((e) => e.startsWith("PATH=")) ?? "PATH=/usr/sbin:/usr/bin:/sbin:/bin";
  return sh("chroot", [image.rootfs, "/usr/bin/env", "-i", pathEnv, ...command]);
}

/** The shared libraries a program of the image needs that its root lacks (ldd inside the root). */
function unresolved(image: Unpacked, program: string): string[] {
  const ldd = inImage(image, ["ldd", program]);
  return ldd.out.split("\n").filter((l) => l.includes("not found"));
}

describeImages("Calico's images, as the pinned operator deploys them", () => {
  const images = new Map<string, Unpacked>();
  const byName = (name: string) => [...images.values()].find((i) => i.reference.split("/").pop()!.split(":")[0] === name)!;
  let operatorList: string[] = [];

  beforeAll(() => {
    for (const file of fs.readdirSync(calicoImageArchiveDir()).filter((f) => f.endsWith(".tar"))) {
      const image = unpack(path.join(calicoImageArchiveDir(), file));
      images.set(image.reference, image);
    }
    // The operator's own list of the images it deploys (pkg/components), printed by the program in its image.
    const operator = [...images.values()].find((i) => i.reference.startsWith("quay.io/tigera/operator:"))!;
    const printed = inImage(operator, ["/usr/bin/operator", "--print-images=listcalico"]);
    expect(printed.status).toBe(0);
    operatorList = printed.out.trim().split("\n");
  });

  test("every archive is tagged as the operator names its image, and the operator as Calico 3.32.1's manifest runs it", () => {
    expect(images.size).toBe(calicoImages().length);
    for (const reference of images.keys()) expect(operatorList).toContain(reference);
    const manifest = YAML.parseAllDocuments(fs.readFileSync(path.join(__dirname, "..", "reference", "upstream", "calico-v3.32.1", "tigera-operator.yaml"), "utf8")).map((d) => d.toJS());
    const deployment = manifest.find((d) => d?.kind === "Deployment" && d.metadata.name === "tigera-operator");
    expect(images.has(deployment.spec.template.spec.containers[0].image)).toBe(true);
  });

  test("the images for what the Installation deploys are all there: calico-node and its init containers, typha, kube-controllers, the CSI driver", () => {
    // Names of pkg/components' Calico components the app's Installation renders (not FIPS, not Windows).
    const deployed = ["node", "cni", "pod2daemon-flexvol", "typha", "kube-controllers", "csi", "node-driver-registrar"];
    const expected = operatorList.filter((r) => r.startsWith("quay.io/calico/") && deployed.includes(r.split("/")[2].split(":")[0]) && !r.endsWith("-fips"));
    expect(expected).toHaveLength(deployed.length);
    for (const reference of expected) expect(images.has(reference)).toBe(true);
  });

  test("calico-node's image runs runit as upstream's does, with BIRD, confd's templates and the services", () => {
    const node = byName("node");
    expect(node.config.Cmd).toEqual(["start_runit"]);
    expect(node.config.Env).toContain("SVDIR=/etc/service/enabled");
    // felix's switch past its libbpf clean-up: this build has libbpf's stubs (calico-images.ts).
    expect(node.config.Env).toContain("FELIX_DebugSkipCTLBCleanup=true");
    for (const file of [
      "usr/sbin/start_runit",
      "etc/rc.local",
      "etc/calico/felix.cfg",
      "etc/calico/confd/conf.d/bird6.toml",
      "etc/calico/confd/templates/bird6.cfg.template",
      "etc/calico/confd/templates/bird6_ipam.cfg.template",
      "etc/service/available/bird6/run",
      "etc/service/available/felix/run",
      "etc/service/available/confd/run",
    ]) {
      expect(fs.existsSync(path.join(node.rootfs, file))).toBe(true);
    }
    // start_runit finds runsvdir with `which`; the readiness probe runs /bin/calico-node.
    expect(inImage(node, ["which", "runsvdir"])).toMatchObject({ status: 0 });
    expect(inImage(node, ["which", "sv"])).toMatchObject({ status: 0 });
    const version = inImage(node, ["/bin/calico-node", "-v"]);
    expect(version).toMatchObject({ status: 0 });
    expect(version.out).toContain("v3.32.1");
    for (const bird of ["bird", "bird6"]) {
      const v = inImage(node, [`/bin/${bird}`, "--version"]);
      expect(v.out).toMatch(/BIRD version v0\.3\.3/);
      // Linked statically, as upstream's.
      expect(inImage(node, ["ldd", `/bin/${bird}`]).out).toMatch(/not a dynamic executable/);
    }
  });

  test("calico-node's image holds iptables (nft and legacy), ip6tables, ipset, ip, nft and conntrack, their libraries resolved", () => {
    const node = byName("node");
    const iptables = inImage(node, ["iptables", "--version"]);
    expect(iptables).toMatchObject({ status: 0 });
    expect(iptables.out).toContain("nf_tables");
    for (const command of [["ip6tables", "--version"], ["iptables-legacy", "--version"], ["ip6tables-nft-save", "--version"], ["ipset", "--version"], ["ip", "-V"], ["nft", "--version"], ["conntrack", "--version"]]) {
      expect({ command, ...inImage(node, command) }).toMatchObject({ status: 0 });
    }
    for (const program of ["/usr/sbin/xtables-nft-multi", "/usr/sbin/xtables-legacy-multi", "/usr/sbin/ipset", "/usr/bin/ip", "/usr/sbin/nft", "/usr/sbin/conntrack"]) {
      expect({ program, missing: unresolved(node, program) }).toEqual({ program, missing: [] });
    }
  });

  test("the CNI image installs from /opt/cni/bin: the plugin, its IPAM name, and the standard plugins the conflist uses", () => {
    const cni = byName("cni");
    expect(cni.config.Cmd).toEqual(["/opt/cni/bin/install"]);
    for (const p of ["install", "calico", "loopback", "host-local", "portmap", "tuning"]) {
      expect(fs.statSync(path.join(cni.rootfs, "opt", "cni", "bin", p)).mode & 0o111).toBeTruthy();
    }
    expect(fs.readlinkSync(path.join(cni.rootfs, "opt", "cni", "bin", "calico-ipam"))).toBe("./calico");
    expect(inImage(cni, ["/opt/cni/bin/calico", "-v"]).out).toContain("v3.32.1");
  });

  test("kube-controllers and typha run as user 999, with the files their Dockerfiles give that user", () => {
    const controllers = byName("kube-controllers");
    expect(controllers.config).toMatchObject({ User: "999", Entrypoint: ["/usr/bin/wrapper", "/usr/bin/kube-controllers"] });
    expect(fs.statSync(path.join(controllers.rootfs, "status", "status.json")).uid).toBe(999);
    expect(byName("typha").config).toMatchObject({ User: "999", Cmd: ["/usr/bin/calico-typha"] });
    expect(fs.existsSync(path.join(byName("typha").rootfs, "etc", "calico", "typha.cfg"))).toBe(true);
  });
});

const kubeProxyArchive = path.join(imageArchiveDir(), "kube-proxy.tar");
const whyKubeProxy = why || (!toolsPresent(["kubernetes"]) ? "the kubernetes images are not built: run `npm run tools -- kubernetes`" : "");
if (whyKubeProxy && !why) console.warn(`SKIPPED kube-proxy image: ${whyKubeProxy}`);

(whyKubeProxy ? test.skip : test)("kube-proxy's image holds iptables (nft backend) and conntrack, their libraries resolved, beside kube-proxy", () => {
  const proxy = unpack(kubeProxyArchive);
  expect(proxy.reference).toMatch(/^registry\.k8s\.io\/kube-proxy:v/);
  expect(inImage(proxy, ["iptables", "--version"]).out).toContain("nf_tables");
  expect(inImage(proxy, ["ip6tables-save", "--version"])).toMatchObject({ status: 0 });
  expect(inImage(proxy, ["conntrack", "--version"])).toMatchObject({ status: 0 });
  expect(unresolved(proxy, "/usr/sbin/xtables-nft-multi")).toEqual([]);
  expect(inImage(proxy, ["kube-proxy", "--version"]).out).toContain(proxy.reference.split(":").pop()!);
});

const whyContainerd =
  why ||
  (!toolsPresent(["kubernetes"]) ? "the containerd build is missing: run `npm run tools -- kubernetes`" : !fs.existsSync("/usr/sbin/runc") ? "Debian's runc is missing (apt-get install runc)" : "");
if (whyContainerd && !why) console.warn(`SKIPPED Calico images under containerd: ${whyContainerd}`);

(whyContainerd ? test.skip : test)("containerd imports calico-node's, the CNI plugin's and the operator's archives by their references, and runc runs their programs", async () => {
  const dir = fs.mkdtempSync(path.join(work, "containerd-"));
  // A socket's path must stay under 108 bytes, which the test's temporary folder may not.
  const runDir = fs.mkdtempSync("/run/v6fabric-calico-images-");
  const socket = path.join(runDir, "containerd.sock");
  fs.writeFileSync(path.join(dir, "config.toml"), [`version = 3`, `root = "${dir}/root"`, `state = "${runDir}/state"`, `[grpc]`, `  address = "${socket}"`, ``].join("\n"));
  const env = { ...process.env, PATH: `${path.dirname(containerdBinary("containerd"))}:${process.env.PATH}` };
  const daemon = spawn(containerdBinary("containerd"), ["--config", path.join(dir, "config.toml")], { env, stdio: "ignore" });
  const ctr = (...args: string[]) => spawnSync(containerdBinary("ctr"), ["--address", socket, "--namespace", "k8s.io", ...args], { env, encoding: "utf8", timeout: 120_000 });
  try {
    for (let i = 0; i < 100 && ctr("version").status !== 0; i++) await new Promise((r) => setTimeout(r, 100));
    expect(daemon.exitCode).toBeNull();
    for (const archive of ["node.tar", "cni.tar", "operator.tar"]) expect(ctr("images", "import", path.join(calicoImageArchiveDir(), archive)).status).toBe(0);
    const listed = ctr("images", "ls", "-q").stdout.split("\n");
    for (const reference of ["quay.io/calico/node:v3.32.1", "quay.io/calico/cni:v3.32.1", "quay.io/tigera/operator:v1.42.3"]) expect(listed).toContain(reference);
    const run = (image: string, ...command: string[]) => ctr("run", "--rm", image, `t-${process.pid}-${Date.now()}`, ...command);
    expect(run("quay.io/calico/node:v3.32.1", "/bin/calico-node", "-v").stdout).toContain("v3.32.1");
    expect(run("quay.io/calico/node:v3.32.1", "bird6", "--version").stderr + run("quay.io/calico/node:v3.32.1", "bird6", "--version").stdout).toMatch(/BIRD version/);
    expect(run("quay.io/calico/cni:v3.32.1", "/opt/cni/bin/calico", "-v").stdout).toContain("v3.32.1");
    // As the image's user 10001, as the operator's Deployment runs it.
    expect(run("quay.io/tigera/operator:v1.42.3", "/usr/bin/operator", "--print-images=listcalico").stdout).toContain("quay.io/calico/node:v3.32.1");
  } finally {
    if (daemon.exitCode === null) {
      const exited = new Promise((r) => daemon.once("exit", r));
      daemon.kill("SIGTERM");
      await exited;
    }
    fs.rmSync(runDir, { recursive: true, force: true });
  }
});
