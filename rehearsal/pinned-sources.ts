/**
 * Upstream sources built from their repositories' trees (the Go module proxy refuses
 * some; Calico's images need more than a module: docs/rehearsal.md), pinned by release,
 * commit and SHA-256: the one place that knows where each comes from. The rehearsal's
 * tools build them unmodified; nothing from them is committed.
 *
 * A source is found, in this order:
 *   1. a checkout of the pinned commit at `$V6FABRIC_PINNED_SOURCES/<name>-<version>/`
 *      (what the pull-request workflow makes with actions/checkout), its HEAD checked;
 *   2. the tarball `$V6FABRIC_PINNED_SOURCES/<tarball>`, its SHA-256 checked;
 * where V6FABRIC_PINNED_SOURCES defaults to `../shared/upstream/sources` beside the
 * repository. A lone clone has neither: `missingSourceAdvice()` says what to put where,
 * and the tests that need the build skip loudly.
 */
import { spawnSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";

export interface PinnedSource {
  /** Folder name of the unpacked tree, without the version: `terraform-provider-metal`. */
  readonly name: string;
  readonly version: string;
  /** The tarball's file name, and the SHA-256 of its bytes. */
  readonly tarball: string;
  readonly sha256: string;
  /** GitHub `owner/name` and the full commit of the release. */
  readonly repository: string;
  readonly commit: string;
  /** The top folder of the tarball, when it is not `<name>-<version>`. */
  readonly tarballFolder?: string;
  /**
   * A file a checkout of the repository holds (and the unpacked tarball, unless
   * `tarballFolder` says it has another layout): how a checkout is recognised. @default "go.mod"
   */
  readonly marker?: string;
}

/** equinix/metal 3.3.0 (tag v3.3.0): the provider the app's Metal objects are written for. */
export const METAL_PROVIDER_SOURCE: PinnedSource = {
  name: "terraform-provider-metal",
  version: "3.3.0",
  tarball: "terraform-provider-metal-3.3.0.tar.gz",
  sha256: "62f3f6331476ff7bcd5c71238c013e8cbe23d71ce7da21d05c2f9fd46961e717",
  repository: "equinix/terraform-provider-metal",
  commit: "5b6938ab0f6f200cbe414418a0e7f2d5ff988594",
};

/**
 * hashicorp/kubernetes 2.38.0 (tag v2.38.0): what @cdktf/provider-kubernetes 12.x was
 * generated from; the configuration stack's kubernetes_manifest resources. The tarball
 * lacks one test fixture (manifest/openapi/testdata/k8s-swagger.json), which `go build`
 * never reads.
 */
export const KUBERNETES_PROVIDER_SOURCE: PinnedSource = {
  name: "terraform-provider-kubernetes",
  version: "2.38.0",
  tarball: "terraform-provider-kubernetes-2.38.0.tar.gz",
  sha256: "fda83436ff8963b2f609dd4ed248c4e60ad53041e1dd8f1383bda883b9ba3b5e",
  repository: "hashicorp/terraform-provider-kubernetes",
  commit: "be88f44271050f69d52f410bca388834afedfe71",
};

/**
 * Calico 3.32.1 (tag v3.32.1), one Go module for calico-node, the CNI plugin,
 * kube-controllers, typha and pod2daemon. 3.32.1 rather than the 3.32.0 the app first
 * pinned: its operator (1.42.3) finds the served MutatingAdmissionPolicy version, where
 * 1.42.0 fails on Kubernetes 1.36 in native-v3 mode (docs/facts.md).
 */
export const CALICO_SOURCE: PinnedSource = {
  name: "calico",
  version: "3.32.1",
  tarball: "calico-3.32.1.tar.gz",
  sha256: "e645958453720eac0303e2837cafcdfdc6d3436d78a790dc06da77cfb0e715ff",
  repository: "projectcalico/calico",
  commit: "0ca9d1b93644778cafdf1812f3dda02ac0c361e8",
};

/** tigera/operator 1.42.3 (tag v1.42.3): what Calico 3.32.1's tigera-operator.yaml runs. */
export const TIGERA_OPERATOR_SOURCE: PinnedSource = {
  name: "tigera-operator",
  version: "1.42.3",
  tarball: "tigera-operator-1.42.3.tar.gz",
  sha256: "6ae6b18200d38f47d242dfa1d5e57be91c1670d4f7ecff56713007057e1e426c",
  repository: "tigera/operator",
  commit: "40f3e3d35845ec159148b0a726ca069bf104d680",
};

/**
 * Istio 1.29.4 (tag 1.29.4; the operator's Makefile ISTIO_VERSION): the four charts the
 * operator embeds. The tarball holds them packed (`charts/*.tgz`); a checkout of the
 * repository holds their folders under manifests/charts, packed at build time.
 */
export const ISTIO_CHARTS_SOURCE: PinnedSource = {
  name: "istio-charts",
  version: "1.29.4",
  tarball: "istio-charts-1.29.4.tar.gz",
  sha256: "0904e5f7b60096dacbf84a5df2a148572394c4749ca9d1761c85f465b07f5acc",
  repository: "istio/istio",
  commit: "e339c3903bcf276ba1dd83ea98ceebf049e3b385",
  tarballFolder: "charts",
  marker: "manifests/charts/base/Chart.yaml",
};

/**
 * Calico's BIRD fork, branch feature-ipinip at v0.3.3-208: the nearest published commit
 * to the v0.3.3-211-g9111ec3c Calico 3.32's metadata.mk names (that one is not public).
 */
export const CALICO_BIRD_SOURCE: PinnedSource = {
  name: "calico-bird",
  version: "1e2ff99d",
  tarball: "calico-bird-1e2ff99d.tar.gz",
  sha256: "cf94285d1632e591a6d81f0ab211d2e66ba346022a0852db1703f4d6a2d5665f",
  repository: "projectcalico/bird",
  commit: "1e2ff99db42b8f037a51f7a8f7b946a542d96bd1",
  marker: "configure.ac",
};

/** kubernetes-csi/node-driver-registrar at the commit Calico's pod2daemon/Makefile builds as calico/node-driver-registrar. */
export const NODE_DRIVER_REGISTRAR_SOURCE: PinnedSource = {
  name: "node-driver-registrar",
  version: "3d20cc82",
  tarball: "node-driver-registrar-3d20cc82.tar.gz",
  sha256: "8004a58fe04af5557d078efa4511323408eecdd4bfc5bdea8d624c24fb3e8b70",
  repository: "kubernetes-csi/node-driver-registrar",
  commit: "3d20cc82ea58e2fcff1ea61fc9e8f6f51c811a7b",
};

/** Every source the project pins, for `npm run tools -- --list` and the workflow's checkouts. */
export const PINNED_SOURCES: readonly PinnedSource[] = [
  METAL_PROVIDER_SOURCE,
  KUBERNETES_PROVIDER_SOURCE,
  CALICO_SOURCE,
  TIGERA_OPERATOR_SOURCE,
  ISTIO_CHARTS_SOURCE,
  CALICO_BIRD_SOURCE,
  NODE_DRIVER_REGISTRAR_SOURCE,
];

/** The folder pinned sources are read from (see the module comment). */
export function pinnedSourcesDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.V6FABRIC_PINNED_SOURCES) return path.resolve(env.V6FABRIC_PINNED_SOURCES);
  return path.resolve(__dirname, "..", "..", "shared", "upstream", "sources");
}

/** Where a checkout of the pinned commit is looked for. */
export function checkoutDir(source: PinnedSource, env: NodeJS.ProcessEnv = process.env): string {
  return path.join(pinnedSourcesDir(env), `${source.name}-${source.version}`);
}

export type SourceLocation = { readonly kind: "checkout"; readonly dir: string } | { readonly kind: "tarball"; readonly file: string };

/** Where the source is, or undefined when neither form exists. Does not verify it. */
export function locateSource(source: PinnedSource, env: NodeJS.ProcessEnv = process.env): SourceLocation | undefined {
  const dir = checkoutDir(source, env);
  if (fs.existsSync(path.join(dir, source.marker ?? "go.mod"))) return { kind: "checkout", dir };
  const file = path.join(pinnedSourcesDir(env), source.tarball);
  if (fs.existsSync(file)) return { kind: "tarball", file };
  return undefined;
}

/** What to put where, for a machine without the source (printed by tools, quoted by skipping tests). */
export function missingSourceAdvice(source: PinnedSource, env: NodeJS.ProcessEnv = process.env): string {
  return (
    `${source.name} ${source.version} is built from its pinned source, which is not on this machine: ` +
    `check out github.com/${source.repository} at commit ${source.commit} into ${checkoutDir(source, env)}, ` +
    `or put ${source.tarball} (SHA-256 ${source.sha256}) in ${pinnedSourcesDir(env)}; ` +
    `V6FABRIC_PINNED_SOURCES names another folder`
  );
}

export function sha256File(file: string): string {
  return crypto.createHash("sha256").update(fs.readFileSync(file)).digest("hex");
}

/**
 * Puts the verified source tree in `work/<name>-<version>` and returns its path: a
 * tarball must match its SHA-256, a checkout must be at the pinned commit. Throws,
 * naming what differs, otherwise. A tarball whose folder has another name
 * (`tarballFolder`) is unpacked as it is; the caller knows its layout.
 */
export function unpackSource(source: PinnedSource, work: string, env: NodeJS.ProcessEnv = process.env): string {
  const location = locateSource(source, env);
  if (!location) throw new Error(missingSourceAdvice(source, env));
  const tree = path.join(work, `${source.name}-${source.version}`);
  if (location.kind === "tarball") {
    const actual = sha256File(location.file);
    if (actual !== source.sha256) throw new Error(`${location.file} has SHA-256 ${actual}, not the pinned ${source.sha256}: refusing to build it`);
    const untar = spawnSync("tar", ["-xzf", location.file, "-C", work], { encoding: "utf8" });
    if (untar.status !== 0) throw new Error(`tar -xzf ${location.file} failed: ${untar.stderr}`);
    if (source.tarballFolder) {
      const folder = path.join(work, source.tarballFolder);
      if (!fs.existsSync(folder)) throw new Error(`${location.file} does not hold ${source.tarballFolder}/`);
      return folder;
    }
    const marker = source.marker ?? "go.mod";
    if (!fs.existsSync(path.join(tree, marker))) throw new Error(`${location.file} does not hold ${path.basename(tree)}/${marker}`);
    return tree;
  }
  const head = spawnSync("git", ["-C", location.dir, "rev-parse", "HEAD"], { encoding: "utf8" });
  if (head.status !== 0 || head.stdout.trim() !== source.commit) {
    throw new Error(`${location.dir} is not a checkout of ${source.repository} at ${source.commit} (HEAD: ${head.stdout.trim() || head.stderr.trim()})`);
  }
  // Built from a copy, so the checkout stays clean whatever the build writes.
  fs.cpSync(location.dir, tree, { recursive: true, filter: (p) => path.basename(p) !== ".git" });
  return tree;
}
