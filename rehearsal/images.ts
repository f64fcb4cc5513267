/**
 * Container images for the rehearsal, built on this machine from the rehearsal's own
 * builds (tools.ts) and tagged with the names kubeadm uses, so containerd finds them
 * and pulls nothing: one uncompressed layer holding the program, written as an OCI
 * image layout in a tar archive that `ctr images import` reads.
 *
 * The static pods kubeadm writes name each program as their command (`etcd`,
 * `kube-apiserver`, ...), so an image needs only that program on its PATH. The pause
 * image holds the rehearsal's pause program (tools.ts), the sandbox containerd starts
 * for every pod.
 */
import { createHash } from "node:crypto";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

/** One image: its full reference and the programs it holds, by their path in the image. */
export interface ImageSpec {
  /** Full reference as kubeadm writes it, e.g. registry.k8s.io/kube-apiserver:v1.36.3. */
  readonly reference: string;
  /** Program path in the image (absolute) -> file on this machine (mode 0755), or a file with its mode. */
  readonly files: Readonly<Record<string, string | { readonly file: string; readonly mode: number }>>;
  /** Entrypoint, for images whose users give no command (the pause image). */
  readonly entrypoint?: readonly string[];
  /** Command (the image's CMD), when its users give none and it has no entrypoint. */
  readonly cmd?: readonly string[];
  /**
   * A root file system the image starts from (a Debian root made by calico-images.ts),
   * copied with its owners and modes; `files` and `trees` go on top. Needs root.
   */
  readonly root?: string;
  /** Paths of `root` left out, where `trees` puts its own (Debian runit's /etc/service link). */
  readonly without?: readonly string[];
  /** Folder in the image (absolute) -> folder on this machine whose contents go there. */
  readonly trees?: Readonly<Record<string, string>>;
  /** Symbolic links: path in the image -> target. */
  readonly links?: Readonly<Record<string, string>>;
  /** Empty folders: path in the image -> mode (e.g. /tmp, 0o1777). */
  readonly dirs?: Readonly<Record<string, number>>;
  /** Owner (user and group id) of paths in the image that are not root's, as upstream's Dockerfile sets them. Needs root. */
  readonly owners?: Readonly<Record<string, number>>;
  /** Environment beyond PATH (or replacing it). */
  readonly env?: Readonly<Record<string, string>>;
  /** `uid[:gid]` the image runs as (its Dockerfile's USER). */
  readonly user?: string;
  readonly workingDir?: string;
}

/** Raise when the archives this module writes change, so cached ones are made again. */
export const IMAGE_FORMAT_VERSION = 2;

const PATH_IN_IMAGE = "/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

function sha256File(file: string): { digest: string; size: number } {
  const hash = createHash("sha256");
  const fd = fs.openSync(file, "r");
  const buffer = Buffer.alloc(8 * 1024 * 1024);
  let size = 0;
  try {
    for (let n = fs.readSync(fd, buffer); n > 0; n = fs.readSync(fd, buffer)) {
      hash.update(buffer.subarray(0, n));
      size += n;
    }
  } finally {
    fs.closeSync(fd);
  }
  return { digest: `sha256:${hash.digest("hex")}`, size };
}

function run(command: string, args: readonly string[]): void {
  const result = spawnSync(command, [...args], { encoding: "utf8" });
  if (result.status !== 0) throw new Error(`${command} ${args.join(" ")} failed: ${result.stderr.trim()}`);
}

function tar(args: readonly string[]): void {
  run("tar", args);
}

/** Writes one blob into an OCI layout's blobs/sha256 and returns its descriptor. */
function writeBlob(layout: string, mediaType: string, content: string | { file: string }): { mediaType: string; digest: string; size: number } {
  const blobs = path.join(layout, "blobs", "sha256");
  fs.mkdirSync(blobs, { recursive: true });
  if (typeof content === "string") {
    const digest = `sha256:${createHash("sha256").update(content).digest("hex")}`;
    fs.writeFileSync(path.join(blobs, digest.slice(7)), content);
    return { mediaType, digest, size: Buffer.byteLength(content) };
  }
  const { digest, size } = sha256File(content.file);
  fs.renameSync(content.file, path.join(blobs, digest.slice(7)));
  return { mediaType, digest, size };
}

/**
 * Writes `spec` as an OCI image layout archive at `archive` (reproducible: fixed owner
 * and time, sorted names). The index names the image by `io.containerd.image.name`
 * (the full reference, which `ctr images import` keeps) and the OCI ref name (its tag).
 */
export function writeImageArchive(spec: ImageSpec, archive: string): void {
  const work = fs.mkdtempSync(`${archive}.work-`);
  try {
    const rootfs = path.join(work, "rootfs");
    fs.mkdirSync(rootfs);
    if (spec.root) run("cp", ["-a", `${spec.root}/.`, rootfs]);
    for (const inImage of spec.without ?? []) fs.rmSync(path.join(rootfs, inImage), { recursive: true, force: true });
    for (const [inImage, source] of Object.entries(spec.trees ?? {})) {
      const target = path.join(rootfs, inImage);
      fs.mkdirSync(target, { recursive: true });
      run("cp", ["-r", "--no-preserve=ownership", `${source}/.`, target]);
    }
    for (const [inImage, source] of Object.entries(spec.files)) {
      const target = path.join(rootfs, inImage);
      fs.mkdirSync(path.dirname(target), { recursive: true });
      const { file, mode } = typeof source === "string" ? { file: source, mode: 0o755 } : source;
      fs.copyFileSync(file, target);
      fs.chmodSync(target, mode);
    }
    for (const [inImage, mode] of Object.entries(spec.dirs ?? {})) {
      fs.mkdirSync(path.join(rootfs, inImage), { recursive: true });
      fs.chmodSync(path.join(rootfs, inImage), mode);
    }
    for (const [inImage, target] of Object.entries(spec.links ?? {})) {
      fs.mkdirSync(path.dirname(path.join(rootfs, inImage)), { recursive: true });
      fs.rmSync(path.join(rootfs, inImage), { force: true });
      fs.symlinkSync(target, path.join(rootfs, inImage));
    }
    for (const [inImage, id] of Object.entries(spec.owners ?? {})) fs.chownSync(path.join(rootfs, inImage), id, id);
    // Programs alone are root's whoever builds them; a root file system keeps its owners.
    const owners = spec.root || spec.owners ? ["--numeric-owner"] : ["--owner=0", "--group=0", "--numeric-owner"];
    const layerTar = path.join(work, "layer.tar");
    tar(["--create", "--file", layerTar, "--sort=name", ...owners, "--mtime=@0", "-C", rootfs, "."]);
    const layout = path.join(work, "layout");
    const layer = writeBlob(layout, "application/vnd.oci.image.layer.v1.tar", { file: layerTar });
    const config = writeBlob(
      layout,
      "application/vnd.oci.image.config.v1+json",
      JSON.stringify({
        architecture: "amd64",
        os: "linux",
        config: {
          Env: Object.entries({ PATH: PATH_IN_IMAGE, ...spec.env }).map(([k, v]) => `${k}=${v}`),
          ...(spec.entrypoint ? { Entrypoint: spec.entrypoint } : {}),
          ...(spec.cmd ? { Cmd: spec.cmd } : {}),
          ...(spec.user ? { User: spec.user } : {}),
          ...(spec.workingDir ? { WorkingDir: spec.workingDir } : {}),
        },
        // Uncompressed: the layer's digest is its diff ID.
        rootfs: { type: "layers", diff_ids: [layer.digest] },
      }),
    );
    const manifest = writeBlob(layout, "application/vnd.oci.image.manifest.v1+json", JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json", config, layers: [layer] }));
    const tag = spec.reference.slice(spec.reference.lastIndexOf(":") + 1);
    fs.writeFileSync(path.join(layout, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
    fs.writeFileSync(
      path.join(layout, "index.json"),
      JSON.stringify({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.index.v1+json",
        manifests: [{ ...manifest, annotations: { "io.containerd.image.name": spec.reference, "org.opencontainers.image.ref.name": tag } }],
      }),
    );
    tar(["--create", "--file", archive, "--sort=name", "--owner=0", "--group=0", "--numeric-owner", "--mtime=@0", "-C", layout, "."]);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/** An image the rehearsal builds, and the file name of its archive in the cache. */
export interface RehearsalImage extends ImageSpec {
  readonly archive: string;
  /** Whether workers need it too (the sandbox and the kube-proxy DaemonSet), or only control planes. */
  readonly onWorkers: boolean;
}

/** The programs the images are made from. */
export interface ImageSources {
  readonly kubernetes: (command: "kube-apiserver" | "kube-controller-manager" | "kube-scheduler" | "kube-proxy") => string;
  readonly etcd: string;
  readonly pause: string;
  readonly coredns: string;
  /** The Debian root kube-proxy's image starts from (calico-images.ts): iptables and conntrack. */
  readonly debianRoot: string;
}

/** The versions in the images' tags. */
export interface ImageVersions {
  readonly kubernetes: string;
  readonly etcd: string;
  readonly coredns: string;
}

/**
 * kubeadm's registry; the etcd tag carries kubeadm's `-0` image revision
 * (cmd/kubeadm/app/constants: DefaultEtcdVersion "3.6.8-0").
 */
const REGISTRY = "registry.k8s.io";
/** The sandbox image kubeadm 1.36 names (constants.PauseVersion); containerd is told to use it. */
export const PAUSE_IMAGE = `${REGISTRY}/pause:3.10.2`;

/**
 * The images for kubeadm's static pods and its add-ons (kube-proxy, CoreDNS), named as
 * kubeadm names them (`kubeadm config images list`). CoreDNS's Deployment gives only
 * arguments, so its image's entrypoint is the program, as in the upstream image; it
 * stays Pending anyway while no Node is Ready (no CNI here).
 */
export function rehearsalImages(from: ImageSources, versions: ImageVersions): RehearsalImage[] {
  const component = (name: "kube-apiserver" | "kube-controller-manager" | "kube-scheduler" | "kube-proxy", onWorkers: boolean): RehearsalImage => ({
    reference: `${REGISTRY}/${name}:v${versions.kubernetes}`,
    files: { [`/usr/local/bin/${name}`]: from.kubernetes(name) },
    archive: `${name}.tar`,
    onWorkers,
  });
  return [
    { reference: PAUSE_IMAGE, files: { "/pause": from.pause }, entrypoint: ["/pause"], archive: "pause.tar", onWorkers: true },
    { reference: `${REGISTRY}/etcd:${versions.etcd}-0`, files: { "/usr/local/bin/etcd": from.etcd }, archive: "etcd.tar", onWorkers: false },
    { reference: `${REGISTRY}/coredns/coredns:v${versions.coredns}`, files: { "/coredns": from.coredns }, entrypoint: ["/coredns"], archive: "coredns.tar", onWorkers: true },
    component("kube-apiserver", false),
    component("kube-controller-manager", false),
    component("kube-scheduler", false),
    // kube-proxy programs the node's tables with iptables (Debian's, nft backend) and
    // clears stale UDP entries with conntrack, like upstream's distroless-iptables base.
    { ...component("kube-proxy", true), root: from.debianRoot },
  ];
}
