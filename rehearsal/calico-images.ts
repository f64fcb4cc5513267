/**
 * The container images the pinned tigera operator deploys for the app's Installation,
 * made from the builds in calico-tools.ts and tagged exactly as the operator names them
 * (its pkg/components: quay.io/calico/<image>:v3.32.1, quay.io/tigera/operator:v1.42.3),
 * so containerd finds them and nothing is pulled. What each holds follows upstream's
 * Dockerfile for it; user-space tools come from Debian's packages:
 *
 * A Debian root (`debootstrap --variant=minbase bookworm` with the packages below, from
 * the archive this machine's apt configuration names, read at run time) is cached by its
 * package list. calico/node and pod2daemon-flexvol start from it, as does kube-proxy
 * (images.ts); the Go-only images hold their programs and the root's CA bundle, as
 * upstream's calico/base does.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { Build, log, onPath, run, toolsCacheDir } from "./build";
import {
  BIRD_PROGRAMS,
  CALICO_TAG,
  calicoProgramBuilds,
  OPERATOR_TAG,
  birdBinary,
  calicoBinary,
  calicoFile,
  nodeDriverRegistrarBinary,
  operatorBinary,
  CALICO_BUILD_VERSION,
} from "./calico-tools";
import { IMAGE_FORMAT_VERSION, ImageSpec, writeImageArchive } from "./images";
import { CALICO_BIRD_SOURCE, TIGERA_OPERATOR_SOURCE } from "./pinned-sources";

/**
 * What calico/node's Dockerfile installs, as Debian names it: iptables (nft and legacy),
 * nftables, ipset, iproute2, conntrack, kmod (ip6tables-save needs it), procps, runit
 * (upstream builds runit 2.1.2 from Debian's source; its start_runit runs runsvdir), and
 * the CA bundle every Go program's image carries. kube-proxy needs iptables and conntrack.
 */
export const DEBIAN_ROOT_PACKAGES = ["iptables", "nftables", "ipset", "iproute2", "conntrack", "kmod", "procps", "runit", "ca-certificates"] as const;
export const DEBIAN_SUITE = "bookworm";

/** The root's cache key: the suite and a digest of the package list. */
export function debianRootVersion(): string {
  const digest = createHash("sha256").update(DEBIAN_ROOT_PACKAGES.join(",")).digest("hex").slice(0, 8);
  return `${DEBIAN_SUITE}-${digest}`;
}

export function debianRootDir(): string {
  return path.join(toolsCacheDir(), `debian-root-${debianRootVersion()}`, "root");
}

/**
 * The Debian archive this machine's apt uses (deb822 `URIs:` or a `deb` line), or
 * V6FABRIC_DEBIAN_MIRROR. Read at run time only: the host is never written anywhere.
 */
export function debianMirror(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.V6FABRIC_DEBIAN_MIRROR) return env.V6FABRIC_DEBIAN_MIRROR;
  const files = ["/etc/apt/sources.list.d/debian.sources", "/etc/apt/sources.list"].filter((f) => fs.existsSync(f));
  for (const f of files) {
    const text = fs.readFileSync(f, "utf8");
    const uri = /^URIs:\s*(\S+\/debian)\/?\s*$/m.exec(text)?.[1] ?? /^deb\s+(?:\[[^\]]*\]\s+)?(\S+\/debian)\/?\s+bookworm\s/m.exec(text)?.[1];
    if (uri) return uri;
  }
  return undefined;
}

export function debianRootBuild(): Build {
  const root = debianRootDir();
  return {
    name: "debian-root",
    version: debianRootVersion(),
    outputs: [root, path.join(path.dirname(root), "packages.txt")],
    group: "calico",
    alsoIn: ["kubernetes"],
    unavailable() {
      if (process.getuid?.() !== 0) return "the Debian root for Calico's and kube-proxy's images is made with debootstrap, as root";
      if (!onPath("debootstrap")) return "the Debian root for Calico's and kube-proxy's images needs debootstrap (apt-get install debootstrap)";
      if (!debianMirror()) return "no Debian archive found in /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list: set V6FABRIC_DEBIAN_MIRROR";
      return undefined;
    },
    build(work) {
      const mirror = debianMirror()!;
      const target = path.join(work, "root");
      run("debootstrap", ["--variant=minbase", `--include=${DEBIAN_ROOT_PACKAGES.join(",")}`, DEBIAN_SUITE, target, mirror]);
      // Nothing debootstrap wrote of the archive's address (sources.list, apt's lists, its
      // log), no boot-time devices, and, as upstream's clean-up-filesystem.sh, no manuals
      // or translations (the packages' copyright files stay).
      for (const sub of ["etc/apt/sources.list", "var/lib/apt/lists", "var/cache/apt", "var/log", "dev", "proc", "sys", "run", "tmp", "usr/share/man", "usr/share/info", "usr/share/locale"]) {
        fs.rmSync(path.join(target, sub), { recursive: true, force: true });
      }
      run("find", [path.join(target, "usr/share/doc"), "-mindepth", "2", "!", "-name", "copyright", "!", "-type", "d", "-delete"]);
      for (const sub of ["dev", "proc", "sys", "run", "var/log", "var/lib/apt/lists", "var/cache/apt"]) fs.mkdirSync(path.join(target, sub), { recursive: true });
      fs.mkdirSync(path.join(target, "tmp"));
      fs.chmodSync(path.join(target, "tmp"), 0o1777);
      const packages = run("chroot", [target, "dpkg-query", "-W", "-f", "${Package} ${Version}\\n"]);
      fs.rmSync(path.dirname(debianRootDir()), { recursive: true, force: true });
      fs.mkdirSync(path.dirname(debianRootDir()), { recursive: true });
      run("mv", [target, debianRootDir()]);
      fs.writeFileSync(path.join(path.dirname(debianRootDir()), "packages.txt"), packages);
      log(`  ${packages.trim().split("\n").length} packages, ${run("du", ["-sh", debianRootDir()]).split("\t")[0]}`);
    },
  };
}

/** An image of Calico's, and the file name of its archive in the cache. */
export interface CalicoImage extends ImageSpec {
  readonly archive: string;
}

const CALICO_REGISTRY = "quay.io/calico";

/** The CA bundle and a /tmp: what calico/base gives the Go programs' images. */
function base(): Pick<ImageSpec, "files" | "dirs"> {
  return {
    files: { "/etc/ssl/certs/ca-certificates.crt": { file: path.join(debianRootDir(), "etc", "ssl", "certs", "ca-certificates.crt"), mode: 0o644 } },
    dirs: { "/tmp": 0o1777 },
  };
}

function calicoImage(image: string, spec: Omit<ImageSpec, "reference">): CalicoImage {
  return { reference: `${CALICO_REGISTRY}/${image}:${CALICO_TAG}`, archive: `${image}.tar`, ...spec };
}

/**
 * The images the operator deploys for the app's Installation (lib/calico.ts): calico-node
 * with its init containers (install-cni from calico/cni, flexvol-driver from
 * pod2daemon-flexvol, as flexVolumePath is set), typha, kube-controllers, the CSI
 * DaemonSet (csi, node-driver-registrar: kubeletVolumePluginPath is not "None"), and the
 * operator itself. No APIServer, Goldmane or Whisker resource exists, so none of those.
 */
export function calicoImages(): CalicoImage[] {
  const root = debianRootDir();
  const bird = Object.fromEntries(BIRD_PROGRAMS.map((p) => [`/bin/${p}`, birdBinary(p)]));
  return [
    // node/Dockerfile: the Debian root's tools, runit, BIRD, node/filesystem (etc, sbin),
    // confd's conf.d and templates, calico-node and mountns; runit is started by CMD.
    calicoImage("node", {
      root,
      // Debian's runit links /etc/service to its own runsvdir; calico-node's rc.local
      // makes /etc/service/enabled from node/filesystem's /etc/service/available.
      without: ["/etc/service"],
      trees: {
        "/etc": path.join(calicoFile("nodeFilesystem"), "etc"),
        "/usr/sbin": path.join(calicoFile("nodeFilesystem"), "sbin"),
        "/etc/calico/confd": calicoFile("confd"),
      },
      files: {
        ...bird,
        "/bin/calico-node": calicoBinary("calico-node"),
        "/bin/mountns": calicoBinary("mountns"),
        "/licenses/LICENSE": { file: calicoFile("licence"), mode: 0o644 },
      },
      // FELIX_DebugSkipCTLBCleanup: felix, not in BPF mode, removes a BPF connect-time
      // load balancer left by an earlier run (felix/bpf/nat/connecttime.go), through
      // libbpf; this CGO_ENABLED=0 build has libbpf's stubs, and felix died at start with
      // "panic: LIBBPF syscall stub". The variable is felix's own switch to skip that
      // clean-up (its FV tests set it); nothing here ever ran Calico's BPF data plane.
      env: { SVDIR: "/etc/service/enabled", FELIX_DebugSkipCTLBCleanup: "true" },
      cmd: ["start_runit"],
    }),
    // cni-plugin/Dockerfile: the plugins in /opt/cni/bin, `install` as CMD.
    calicoImage("cni", {
      ...base(),
      files: {
        ...base().files,
        "/opt/cni/bin/install": calicoBinary("install"),
        "/opt/cni/bin/calico": calicoBinary("calico"),
        ...Object.fromEntries((["loopback", "host-local", "portmap", "tuning"] as const).map((p) => [`/opt/cni/bin/${p}`, calicoBinary(p)])),
        "/licenses/LICENSE": { file: calicoFile("licence"), mode: 0o644 },
      },
      links: { "/opt/cni/bin/calico-ipam": "./calico" },
      env: { PATH: "/opt/cni/bin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" },
      workingDir: "/opt/cni/bin",
      cmd: ["/opt/cni/bin/install"],
    }),
    // kube-controllers/Dockerfile: status and profile files the user 999 writes.
    calicoImage("kube-controllers", {
      ...base(),
      files: {
        ...base().files,
        "/usr/bin/kube-controllers": calicoBinary("kube-controllers"),
        "/usr/bin/check-status": calicoBinary("check-status"),
        "/usr/bin/wrapper": calicoBinary("wrapper"),
        "/status/status.json": { file: "/dev/null", mode: 0o644 },
        "/profiles/mem.pprof": { file: "/dev/null", mode: 0o644 },
        "/profiles/cpu.pprof": { file: "/dev/null", mode: 0o644 },
      },
      owners: { "/status/status.json": 999, "/profiles/mem.pprof": 999, "/profiles/cpu.pprof": 999 },
      user: "999",
      entrypoint: ["/usr/bin/wrapper", "/usr/bin/kube-controllers"],
    }),
    // typha/docker-image/Dockerfile.
    calicoImage("typha", {
      ...base(),
      files: { ...base().files, "/usr/bin/calico-typha": calicoBinary("calico-typha"), "/etc/calico/typha.cfg": { file: calicoFile("typhaConfig"), mode: 0o644 } },
      user: "999",
      cmd: ["/usr/bin/calico-typha"],
    }),
    // pod2daemon/flexvol/docker-image/Dockerfile: bash and coreutils for flexvol.sh (here the whole Debian root).
    calicoImage("pod2daemon-flexvol", {
      root,
      files: { "/usr/local/bin/flexvol": calicoBinary("flexvol"), "/usr/local/bin/flexvol.sh": calicoFile("flexvolScript") },
      entrypoint: ["/usr/local/bin/flexvol.sh"],
    }),
    // pod2daemon/csidriver/Dockerfile and node-driver-registrar-docker/Dockerfile.
    calicoImage("csi", { ...base(), files: { ...base().files, "/usr/bin/csi-driver": calicoBinary("csi-driver") }, entrypoint: ["/usr/bin/csi-driver"] }),
    calicoImage("node-driver-registrar", {
      ...base(),
      files: { ...base().files, "/usr/bin/node-driver-registrar": nodeDriverRegistrarBinary() },
      entrypoint: ["/usr/bin/node-driver-registrar"],
    }),
    // The operator's build/Dockerfile.
    {
      reference: `quay.io/tigera/operator:${OPERATOR_TAG}`,
      archive: "operator.tar",
      ...base(),
      files: { ...base().files, "/usr/bin/operator": operatorBinary() },
      user: "10001:10001",
      entrypoint: ["/usr/bin/operator"],
    },
  ];
}

/** What the image specs above add to their inputs; raised when a spec changes. */
const CALICO_IMAGE_SPEC_REVISION = 2;

/** The archives' cache key: everything they are made from. */
export function calicoImagesVersion(): string {
  return `${CALICO_BUILD_VERSION}-spec${CALICO_IMAGE_SPEC_REVISION}-operator${TIGERA_OPERATOR_SOURCE.version}-bird${CALICO_BIRD_SOURCE.version}-root${debianRootVersion()}-format${IMAGE_FORMAT_VERSION}`;
}

export function calicoImageArchiveDir(): string {
  return path.join(toolsCacheDir(), `calico-images-${calicoImagesVersion()}`);
}

/** Made from Calico's builds and the Debian root (`from`), so it comes after them. */
function calicoImagesBuild(from: readonly Build[]): Build {
  const images = calicoImages();
  return {
    name: "calico-images",
    version: calicoImagesVersion(),
    outputs: images.map((i) => path.join(calicoImageArchiveDir(), i.archive)),
    group: "calico",
    unavailable: () =>
      from.map((b) => b.unavailable?.()).find((r) => r !== undefined) ??
      (process.getuid?.() !== 0 ? "Calico's images keep their files' owners (kube-controllers' user 999): make them as root" : undefined),
    build() {
      fs.mkdirSync(calicoImageArchiveDir(), { recursive: true });
      for (const image of images) {
        const archive = path.join(calicoImageArchiveDir(), image.archive);
        writeImageArchive(image, archive);
        log(`  ${image.reference} ${(fs.statSync(archive).size / 1024 / 1024).toFixed(1)} MiB`);
      }
    },
  };
}

/** Calico's builds for `npm run tools` (group calico), in the order they run. */
export function calicoBuilds(): Build[] {
  const programs = [...calicoProgramBuilds(), debianRootBuild()];
  return [...programs, calicoImagesBuild(programs)];
}
