/**
 * Every pinned version and hash in one place. Nodes download nothing that is not
 * listed here with its hash; Ignition verifies each hash before it writes the file,
 * and a mismatch stops the boot (docs/versions.md has the source of every hash).
 */

/** A file a node downloads at first boot, verified by Ignition. */
export interface PinnedDownload {
  readonly url: string;
  /** Ignition verification hash, `sha256-<hex>` or `sha512-<hex>` (spec 3.1.0+ accepts both). */
  readonly hash: string;
}

export interface KubernetesRelease {
  readonly kubeadm: PinnedDownload;
  readonly kubelet: PinnedDownload;
  readonly kubectl: PinnedDownload;
}

function k8sBinary(version: string, name: "kubeadm" | "kubelet" | "kubectl", sha256: string): PinnedDownload {
  return { url: `https://dl.k8s.io/release/v${version}/bin/linux/amd64/${name}`, hash: `sha256-${sha256}` };
}

function kubernetesRelease(version: string, sha256: { kubeadm: string; kubelet: string; kubectl: string }): KubernetesRelease {
  return {
    kubeadm: k8sBinary(version, "kubeadm", sha256.kubeadm),
    kubelet: k8sBinary(version, "kubelet", sha256.kubelet),
    kubectl: k8sBinary(version, "kubectl", sha256.kubectl),
  };
}

/**
 * Kubernetes releases a node can install, default first. linux/amd64 SHA-256 as
 * pinned by kubernetes-sigs/kubespray roles/kubespray_defaults/vars/main/checksums.yml
 * (commit 46dbdd3994b32640bcd806b0097f50e8fdf1d514).
 */
export const KUBERNETES_RELEASES: Readonly<Record<string, KubernetesRelease>> = {
  "1.36.3": kubernetesRelease("1.36.3", {
    kubeadm: "bba1733c701bf70ec74ba1cc3fd5745404c1134a8a4b0a5f8560cc9832023421",
    kubelet: "46707a53209f826ad0f0d62371ac69cd00e78fd9a8176cf5f6f87f18f7f8b718",
    kubectl: "ebbd080e7c2e275093b55915722043257eb24004363e20acb3c4d71919f88336",
  }),
  "1.36.4": kubernetesRelease("1.36.4", {
    kubeadm: "10d054585907f2c8bb823c84f6a66b3bd2a474c3d795475f04e9a44f78650fe6",
    kubelet: "cf2562db46c48ab84cc3791540778ee7fb1a0a008529adbb434723dd02ed8b4b",
    kubectl: "8b8f088da2dab964f853b38464033b1be15ede2839eca751482357c45abdd05a",
  }),
};

/** The default: the release the reference schemas in reference/schemas/kubeadm were derived from. */
export const DEFAULT_KUBERNETES_VERSION = "1.36.3";

/**
 * Calico, installed by the Tigera operator. The operator manifest holds no CRDs: the
 * operator runs with -manage-crds=true and ensures them at start-up, in whichever API
 * group it detects; nodes apply the native `projectcalico.org/v3` CRDs first so it
 * detects v3 (docs/bgp-fabric.md, "API group").
 * Hashes computed from projectcalico/calico tag v3.32.1 (commit 0ca9d1b9...;
 * reference/upstream/calico-v3.32.1/SHA512SUMS). 3.32.1 and its
 * operator 1.42.3 fix what this design meets: operator 1.42.0 fails on Kubernetes 1.36 in
 * native-v3 mode (hard-coded MutatingAdmissionPolicy v1beta1), and 3.32.0 mishandles
 * server-side apply of a BGPConfiguration with Service IP lists (docs/facts.md).
 */
export const CALICO = {
  version: "v3.32.1",
  /** Operator image the manifest deploys. */
  operatorImage: "quay.io/tigera/operator:v1.42.3",
  operatorManifest: {
    url: "https://raw.githubusercontent.com/projectcalico/calico/v3.32.1/manifests/tigera-operator.yaml",
    hash: "sha512-3ded38359dc27bd83d3a2a4df2ce8a7acbaeb8dee173063977112bc99d1ebbd4667a1247e6b9d0f3239f783ed6625a35754e4acd7ef910524ad199639265ede1",
  } satisfies PinnedDownload,
  /** The native `projectcalico.org/v3` CRDs and the operator's own (`operator.tigera.io`), 2.9 MB. */
  v3Crds: {
    url: "https://raw.githubusercontent.com/projectcalico/calico/v3.32.1/manifests/v3_projectcalico_org.yaml",
    hash: "sha512-d1acff14f407bf2a6cf58873c3ed2e8783ede741d87d359dc556f9ae80b0852907e72f748e6d5d87ee4f9f6a5d2080fcdc2986e6a2e0f2061e4e9d3553fc7073",
  } satisfies PinnedDownload,
} as const;

/**
 * containerd's major version in each Flatcar channel the app installs from (LTS 4230
 * ships containerd 1.7, stable 4593 ships 2.1; docs/facts.md), and the last Kubernetes
 * minor release that supports containerd 1.x (1.35, per its release notes).
 */
export const FLATCAR_CONTAINERD_MAJOR: Readonly<Record<"stable" | "beta" | "alpha" | "lts", number>> = { stable: 2, beta: 2, alpha: 2, lts: 1 };
export const LAST_KUBERNETES_MINOR_WITH_CONTAINERD_1 = 35;

/**
 * tayga, the NAT64 translator every node runs (lib/nat64.ts, docs/nat64.md): Debian 12's
 * package, by its SHA-256 as Debian's Packages index lists it (`apt-cache show tayga`;
 * checked with `apt-get download tayga && sha256sum`). Its binary needs only glibc 2.4
 * symbols, so Flatcar's glibc runs it. Where nodes download it from is the operator's
 * setting NAT64_TAYGA_PACKAGE_URL (a mirror they trust, lib/settings.ts); the file is
 * the same on every mirror, so only its name and hash are pinned here, and Ignition
 * refuses any other file.
 */
export const TAYGA = {
  version: "0.9.2-8",
  /** Debian's name for the file, the last part of its URL on any mirror. */
  packageFile: "tayga_0.9.2-8_amd64.deb",
  /** Where Debian's archive layout keeps it, under a mirror's root. */
  poolPath: "pool/main/t/tayga/tayga_0.9.2-8_amd64.deb",
  hash: "sha256-ceb545483c778e6f622a3f5904a20cabe0de5641584b74c38cb3c16d79be9297",
} as const;
