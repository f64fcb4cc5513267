/**
 * The real programs the rehearsal runs, built from Go modules and cached outside the
 * repository by name and version, so a warm run costs seconds and nothing built is
 * ever committed.
 *
 *   npm run tools [-- GROUP...]  build what is missing (groups: terraform, kubernetes,
 *                                coredns, calico, actionlint, matchbox; default all), print each build's time
 *
 * The kubernetes group also holds containerd and the pause program, and the container
 * images made from them (images.ts): the control-plane rehearsal runs the real kubelet
 * on containerd with Debian's runc. kube-proxy's image starts from a Debian root made
 * with debootstrap (calico-images.ts). The calico group builds Calico, its BIRD fork and
 * the tigera operator from their pinned sources, and the images the operator deploys
 * (calico-tools.ts, calico-images.ts).
 *   npm run tools -- --list      print what is cached where, build nothing
 *   npm run tools -- --only NAME build one tool (e.g. terraform-provider-metal)
 *
 * Versions follow what the app uses: the tls provider at the version the
 * @cdktf/provider-tls package was generated from, Kubernetes at the default
 * KUBERNETES_VERSION, etcd at the version that kubeadm of that release deploys.
 * The providers' code is upstream's, unmodified; `go` verifies every module against
 * go.sum or the pinned module hash below.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { DEFAULT_KUBERNETES_VERSION } from "../lib/versions";
import { Build, ToolGroup, goEnv, log, run, toolsCacheDir } from "./build";
import { calicoBuilds, debianRootBuild, debianRootDir, debianRootVersion } from "./calico-images";
import { seconds } from "./format";
import { IMAGE_FORMAT_VERSION, rehearsalImages, writeImageArchive } from "./images";
import { MATCHBOX_PROVIDER, matchboxBuilds } from "./matchbox-tools";
import { KUBERNETES_PROVIDER_SOURCE, METAL_PROVIDER_SOURCE, PinnedSource, locateSource, missingSourceAdvice, unpackSource } from "./pinned-sources";

export { toolsCacheDir };

/**
 * Terraform core 1.5.7: the last release under the MPL-2.0 (later ones are BSL), and
 * what `cdktf` 0.21 supports. OpenTofu would serve too, but cdktf names `terraform`
 * and the Terraform Cloud backend is Terraform's.
 */
export const TERRAFORM_VERSION = "1.5.7";

/** A Terraform provider built from its upstream Go module at the commit of its release tag. */
export interface ProviderBuild {
  /** Registry namespace and type, e.g. hashicorp/tls. */
  readonly source: string;
  readonly version: string;
  /** Go module path (the upstream go.mod's), and the pseudo-version of the tag's commit. */
  readonly module: string;
  readonly moduleVersion: string;
  /** The tag's commit, for the record. */
  readonly commit: string;
}

/**
 * The module paths have no /v4 or /v3 suffix, so the proxy serves the tagged commits
 * only as pseudo-versions (docs/rehearsal.md). equinix/metal is not here: the Go module
 * proxy refuses its module, so it is built from its pinned source (METAL_PROVIDER), as
 * is hashicorp/kubernetes (the proxy does not serve its module either: issue #25).
 */
export const PROVIDERS: readonly ProviderBuild[] = [
  {
    source: "hashicorp/tls",
    version: "4.1.0", // @cdktf/provider-tls 11.0.1
    module: "github.com/hashicorp/terraform-provider-tls",
    moduleVersion: "v1.2.1-0.20250423195406-eefba144662d",
    commit: "eefba144662d715aa78a1ec051d88037b141826c",
  },
];

/**
 * A provider built in the tree of its pinned source (pinned-sources.ts); its dependencies
 * come from the Go module proxy by the tree's go.sum.
 */
export interface SourceProviderBuild {
  /** Registry namespace and type, e.g. equinix/metal. */
  readonly source: string;
  readonly pinned: PinnedSource;
  /** `-X` flags the release build sets (upstream's .goreleaser.yml), with {version} for the version. */
  readonly versionFlags: readonly string[];
}

/**
 * equinix/metal 3.3.0. Upstream's release sets the version reported in the User-Agent
 * with `-X version.ProviderVersion`, a path Go does not resolve; the full package path does.
 */
export const METAL_PROVIDER: SourceProviderBuild = {
  source: "equinix/metal",
  pinned: METAL_PROVIDER_SOURCE,
  versionFlags: ["github.com/equinix/terraform-provider-metal/version.ProviderVersion={version}"],
};

/**
 * hashicorp/kubernetes 2.38.0, for the configuration stack. Its main.go declares the
 * version it reports as a constant ("dev"), which `-X` cannot set, so no flag.
 */
export const KUBERNETES_PROVIDER: SourceProviderBuild = {
  source: "hashicorp/kubernetes",
  pinned: KUBERNETES_PROVIDER_SOURCE,
  versionFlags: [],
};

/** The filesystem mirror `terraform init` installs providers from (provider_installation). */
export function providerMirrorDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(toolsCacheDir(env), "terraform-providers");
}

/** Where one provider binary sits in the mirror (Terraform's unpacked layout). */
export function providerBinaryPath(p: { source: string; version: string }, env: NodeJS.ProcessEnv = process.env): string {
  const [namespace, type] = p.source.split("/");
  return path.join(providerMirrorDir(env), "registry.terraform.io", namespace, type, p.version, "linux_amd64", `terraform-provider-${type}_v${p.version}`);
}

export function terraformBinary(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(toolsCacheDir(env), `terraform-${TERRAFORM_VERSION}`, "terraform");
}

/**
 * Kubernetes binaries for the control-plane rehearsal. k8s.io/kubernetes replaces its
 * staging modules with folders of its own repository, so `go install` cannot build it:
 * a wrapper module requires it and replaces each staging module with its release.
 */
export const KUBERNETES_COMMANDS = ["kubeadm", "kubectl", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy", "kubelet"] as const;
export type KubernetesCommand = (typeof KUBERNETES_COMMANDS)[number];

export function kubernetesBinary(command: KubernetesCommand, version = DEFAULT_KUBERNETES_VERSION, env: NodeJS.ProcessEnv = process.env): string {
  return path.join(toolsCacheDir(env), `kubernetes-${version}`, command);
}

/** etcd as kubeadm 1.36 deploys it (cmd/kubeadm/app/constants: DefaultEtcdVersion 3.6.8-0). */
export const ETCD_VERSION = "3.6.8";

export function etcdBinary(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(toolsCacheDir(env), `etcd-${ETCD_VERSION}`, "etcd");
}

/**
 * containerd 2.x, as Flatcar stable ships (2.1 in 4593; docs/facts.md): the module's
 * latest release. Kubernetes 1.36 supports containerd 2.x only.
 */
export const CONTAINERD_VERSION = "2.4.2";
export const CONTAINERD_COMMANDS = ["containerd", "ctr", "containerd-shim-runc-v2"] as const;
export type ContainerdCommand = (typeof CONTAINERD_COMMANDS)[number];

export function containerdBinary(command: ContainerdCommand, env: NodeJS.ProcessEnv = process.env): string {
  return path.join(toolsCacheDir(env), `containerd-${CONTAINERD_VERSION}`, command);
}

/**
 * The pod sandbox's program (what registry.k8s.io/pause holds, upstream a C program):
 * it only waits for SIGTERM or SIGINT. Its version is ours.
 */
export const PAUSE_VERSION = "1";
const PAUSE_SOURCE = `// The pod sandbox's process: holds the pod's namespaces until told to stop.
package main

import (
\t"os"
\t"os/signal"
\t"syscall"
)

func main() {
\tstop := make(chan os.Signal, 1)
\tsignal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
\t<-stop
}
`;

export function pauseBinary(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(toolsCacheDir(env), `pause-${PAUSE_VERSION}`, "pause");
}

/** The image archives (images.ts), keyed by everything they are made from. */
export function imagesVersion(version = DEFAULT_KUBERNETES_VERSION): string {
  return `${version}-etcd${ETCD_VERSION}-pause${PAUSE_VERSION}-coredns${COREDNS_VERSION}-root${debianRootVersion()}-format${IMAGE_FORMAT_VERSION}`;
}

export function imageArchiveDir(version = DEFAULT_KUBERNETES_VERSION, env: NodeJS.ProcessEnv = process.env): string {
  return path.join(toolsCacheDir(env), `images-${imagesVersion(version)}`);
}

/**
 * CoreDNS as kubeadm 1.36 deploys it (cmd/kubeadm/app/constants: CoreDNSVersion v1.14.2),
 * for the NAT64/DNS64 rehearsal. Its go.mod has no replace directives, so `go install`
 * builds it with the default plugin set (plugin.cfg: dns64, kubernetes, file, hosts, ...).
 */
export const COREDNS_VERSION = "1.14.2";

export function corednsBinary(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(toolsCacheDir(env), `coredns-${COREDNS_VERSION}`, "coredns");
}

/**
 * actionlint, the GitHub Actions workflow linter (not packaged for Debian bookworm), for
 * __tests__/workflow-pr.test.ts; it runs Debian's shellcheck on the workflow's scripts.
 */
export const ACTIONLINT_VERSION = "1.7.12";

export function actionlintBinary(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(toolsCacheDir(env), `actionlint-${ACTIONLINT_VERSION}`, "actionlint");
}

function inGroups(b: Build, groups: readonly ToolGroup[]): boolean {
  return groups.includes(b.group) || (b.alsoIn ?? []).some((g) => groups.includes(g));
}

export type { ToolGroup };

const STAMP = ".built";

function goInstall(pkg: string, bin: string, env: NodeJS.ProcessEnv = goEnv()): void {
  run("go", ["install", pkg], { env: { ...env, GOBIN: bin } });
}

function providerBuild(p: ProviderBuild): Build {
  const type = p.source.split("/")[1];
  return {
    name: `terraform-provider-${type}`,
    version: p.version,
    outputs: [providerBinaryPath(p)],
    group: "terraform",
    build(work) {
      goInstall(`${p.module}@${p.moduleVersion}`, work);
      const target = providerBinaryPath(p);
      fs.mkdirSync(path.dirname(target), { recursive: true });
      fs.renameSync(path.join(work, path.basename(p.module)), target);
    },
  };
}

function sourceProviderBuild(p: SourceProviderBuild): Build {
  const type = p.source.split("/")[1];
  const binary = providerBinaryPath({ source: p.source, version: p.pinned.version });
  return {
    name: `terraform-provider-${type}`,
    version: p.pinned.version,
    outputs: [binary],
    group: "terraform",
    unavailable: () => (locateSource(p.pinned) ? undefined : missingSourceAdvice(p.pinned)),
    build(work) {
      const tree = unpackSource(p.pinned, work);
      const ldflags = ["-s -w", ...p.versionFlags.map((f) => `-X ${f.replace("{version}", p.pinned.version)}`)].join(" ");
      run("go", ["build", "-ldflags", ldflags, "-o", path.join(work, "provider"), "."], { cwd: tree, env: goEnv() });
      fs.mkdirSync(path.dirname(binary), { recursive: true });
      fs.renameSync(path.join(work, "provider"), binary);
    },
  };
}

function kubernetesBuild(version: string): Build {
  const staging = `v0.${version.split(".").slice(1).join(".")}`;
  return {
    name: "kubernetes",
    version,
    outputs: KUBERNETES_COMMANDS.map((c) => kubernetesBinary(c, version)),
    group: "kubernetes",
    build(work) {
      const modDir = JSON.parse(run("go", ["mod", "download", "-json", `k8s.io/kubernetes@v${version}`], { env: goEnv() })).Dir as string;
      // Every `k8s.io/x => ./staging/src/k8s.io/x` replace becomes `k8s.io/x => k8s.io/x v0.y.z`.
      const stagingModules = [...fs.readFileSync(path.join(modDir, "go.mod"), "utf8").matchAll(/^\s*(k8s\.io\/[\w.-]+) => \.\/staging\//gm)].map((m) => m[1]);
      if (stagingModules.length < 30) throw new Error(`k8s.io/kubernetes@v${version}: found only ${stagingModules.length} staging replaces in go.mod`);
      const goVersion = /^go (\S+)$/m.exec(fs.readFileSync(path.join(modDir, "go.mod"), "utf8"))?.[1] ?? "1.26";
      fs.writeFileSync(
        path.join(work, "go.mod"),
        [`module v6fabric.local/kubernetes-tools`, ``, `go ${goVersion}`, ``, `require k8s.io/kubernetes v${version}`, ``, ...stagingModules.map((m) => `replace ${m} => ${m} ${staging}`), ``].join("\n"),
      );
      fs.writeFileSync(
        path.join(work, "tools.go"),
        `//go:build tools\n\npackage tools\n\nimport (\n${KUBERNETES_COMMANDS.map((c) => `\t_ "k8s.io/kubernetes/cmd/${c}"`).join("\n")}\n)\n`,
      );
      run("go", ["mod", "tidy"], { cwd: work, env: goEnv() });
      const [major, minor] = version.split(".");
      const versionPackage = "k8s.io/component-base/version";
      // Without these, kubeadm reports a placeholder version and refuses the config.
      const ldflags = [
        "-s -w",
        `-X ${versionPackage}.gitVersion=v${version}`,
        `-X ${versionPackage}.gitMajor=${major}`,
        `-X ${versionPackage}.gitMinor=${minor}`,
        `-X ${versionPackage}.gitTreeState=clean`,
      ].join(" ");
      for (const command of KUBERNETES_COMMANDS) {
        const started = Date.now();
        run("go", ["build", "-ldflags", ldflags, "-o", path.join(work, "out", command), `k8s.io/kubernetes/cmd/${command}`], { cwd: work, env: goEnv() });
        log(`  ${command} ${seconds(Date.now() - started)}`);
      }
      const target = path.dirname(kubernetesBinary("kubeadm", version));
      fs.mkdirSync(target, { recursive: true });
      for (const command of KUBERNETES_COMMANDS) fs.renameSync(path.join(work, "out", command), path.join(target, command));
    },
  };
}

function etcdBuild(): Build {
  return {
    name: "etcd",
    version: ETCD_VERSION,
    outputs: [etcdBinary()],
    group: "kubernetes",
    build(work) {
      // etcd's server module replaces its sibling modules with relative folders; a
      // wrapper requires each sibling at the same release instead.
      const v = `v${ETCD_VERSION}`;
      const siblings = ["api/v3", "client/pkg/v3", "client/v3", "pkg/v3", "server/v3"].map((m) => `go.etcd.io/etcd/${m}`);
      fs.writeFileSync(path.join(work, "go.mod"), [`module v6fabric.local/etcd-tools`, ``, `go 1.24.0`, ``, ...siblings.map((m) => `require ${m} ${v}`), ``].join("\n"));
      fs.writeFileSync(path.join(work, "tools.go"), `//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n`);
      run("go", ["mod", "tidy"], { cwd: work, env: goEnv() });
      const ldflags = `-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=${v}`;
      run("go", ["build", "-ldflags", ldflags, "-o", path.join(work, "etcd"), "go.etcd.io/etcd/server/v3"], { cwd: work, env: goEnv() });
      fs.mkdirSync(path.dirname(etcdBinary()), { recursive: true });
      fs.renameSync(path.join(work, "etcd"), etcdBinary());
    },
  };
}

function containerdBuild(): Build {
  return {
    name: "containerd",
    version: CONTAINERD_VERSION,
    outputs: CONTAINERD_COMMANDS.map((c) => containerdBinary(c)),
    group: "kubernetes",
    build(work) {
      // The module has no replace directives, so `go install` builds it as released.
      const m = "github.com/containerd/containerd/v2";
      const ldflags = `-s -w -X ${m}/version.Version=${CONTAINERD_VERSION} -X ${m}/version.Revision=v${CONTAINERD_VERSION} -X ${m}/version.Package=${m}`;
      run("go", ["install", "-ldflags", ldflags, ...CONTAINERD_COMMANDS.map((c) => `${m}/cmd/${c}@v${CONTAINERD_VERSION}`)], { env: { ...goEnv(), GOBIN: work } });
      fs.mkdirSync(path.dirname(containerdBinary("containerd")), { recursive: true });
      for (const c of CONTAINERD_COMMANDS) fs.renameSync(path.join(work, c), containerdBinary(c));
    },
  };
}

function pauseBuild(): Build {
  return {
    name: "pause",
    version: PAUSE_VERSION,
    outputs: [pauseBinary()],
    group: "kubernetes",
    build(work) {
      fs.writeFileSync(path.join(work, "go.mod"), "module v6fabric.local/pause\n\ngo 1.24\n");
      fs.writeFileSync(path.join(work, "main.go"), PAUSE_SOURCE);
      fs.mkdirSync(path.dirname(pauseBinary()), { recursive: true });
      run("go", ["build", "-ldflags", "-s -w", "-o", pauseBinary(), "."], { cwd: work, env: goEnv() });
    },
  };
}

/** Made from the builds above, so it comes after them. */
function imagesBuild(version: string): Build {
  const images = rehearsalImages(
    { kubernetes: (c) => kubernetesBinary(c, version), etcd: etcdBinary(), pause: pauseBinary(), coredns: corednsBinary(), debianRoot: debianRootDir() },
    { kubernetes: version, etcd: ETCD_VERSION, coredns: COREDNS_VERSION },
  );
  return {
    name: "images",
    version: imagesVersion(version),
    outputs: images.map((i) => path.join(imageArchiveDir(version), i.archive)),
    group: "kubernetes",
    unavailable: () => debianRootBuild().unavailable?.(),
    build() {
      fs.mkdirSync(imageArchiveDir(version), { recursive: true });
      for (const image of images) writeImageArchive(image, path.join(imageArchiveDir(version), image.archive));
    },
  };
}

function builds(): Build[] {
  return [
    {
      name: "terraform",
      version: TERRAFORM_VERSION,
      outputs: [terraformBinary()],
      group: "terraform",
      build(work) {
        goInstall(`github.com/hashicorp/terraform@v${TERRAFORM_VERSION}`, work);
        fs.mkdirSync(path.dirname(terraformBinary()), { recursive: true });
        fs.renameSync(path.join(work, "terraform"), terraformBinary());
      },
    },
    ...PROVIDERS.map(providerBuild),
    sourceProviderBuild(METAL_PROVIDER),
    sourceProviderBuild(KUBERNETES_PROVIDER),
    kubernetesBuild(DEFAULT_KUBERNETES_VERSION),
    etcdBuild(),
    containerdBuild(),
    pauseBuild(),
    {
      name: "coredns",
      version: COREDNS_VERSION,
      outputs: [corednsBinary()],
      group: "coredns",
      // kubeadm deploys CoreDNS: its image is among the control-plane rehearsal's.
      alsoIn: ["kubernetes"],
      build(work) {
        goInstall(`github.com/coredns/coredns@v${COREDNS_VERSION}`, work);
        fs.mkdirSync(path.dirname(corednsBinary()), { recursive: true });
        fs.renameSync(path.join(work, "coredns"), corednsBinary());
      },
    },
    // kube-proxy's image starts from it (iptables, conntrack); so do two of Calico's.
    debianRootBuild(),
    imagesBuild(DEFAULT_KUBERNETES_VERSION),
    {
      name: "actionlint",
      version: ACTIONLINT_VERSION,
      outputs: [actionlintBinary()],
      group: "actionlint",
      build(work) {
        goInstall(`github.com/rhysd/actionlint/cmd/actionlint@v${ACTIONLINT_VERSION}`, work);
        fs.mkdirSync(path.dirname(actionlintBinary()), { recursive: true });
        fs.renameSync(path.join(work, "actionlint"), actionlintBinary());
      },
    },
    ...calicoBuilds().filter((b) => b.name !== "debian-root"),
    // The Matchbox target's rehearsal: the server and the poseidon/matchbox provider (matchbox-tools.ts).
    ...matchboxBuilds(providerBinaryPath(MATCHBOX_PROVIDER)),
  ];
}

function stampPath(b: Build): string {
  return path.join(toolsCacheDir(), `${b.name}-${b.version}${STAMP}`);
}

function isBuilt(b: Build): boolean {
  return fs.existsSync(stampPath(b)) && b.outputs.every((o) => fs.existsSync(o));
}

/** Whether every tool of `groups` is in the cache (for tests that skip loudly otherwise). */
export function toolsPresent(groups: readonly ToolGroup[]): boolean {
  return builds()
    .filter((b) => inGroups(b, groups))
    .every(isBuilt);
}

/** Why some tool of `groups` is neither cached nor buildable here, or undefined (for loud skips). */
export function toolsUnavailable(groups: readonly ToolGroup[]): string | undefined {
  const reasons = builds()
    .filter((b) => inGroups(b, groups) && !isBuilt(b))
    .map((b) => b.unavailable?.())
    .filter((r): r is string => r !== undefined);
  return reasons.length > 0 ? reasons.join("; ") : undefined;
}

/**
 * Builds what is missing in `groups`, one at a time (two cores: go parallelizes each build
 * itself). A build whose pinned source is absent is skipped, saying what to put where
 * (a lone clone still gets every other tool); `required` makes that an error instead.
 */
export function buildMissing(groups: readonly ToolGroup[], options: { required?: boolean; only?: string } = {}): void {
  const cache = toolsCacheDir();
  fs.mkdirSync(cache, { recursive: true });
  const started = Date.now();
  for (const b of builds().filter((x) => inGroups(x, groups) && (!options.only || x.name === options.only))) {
    if (isBuilt(b)) {
      log(`tools: ${b.name} ${b.version} cached (${fs.readFileSync(stampPath(b), "utf8").trim()})`);
      continue;
    }
    const unavailable = b.unavailable?.();
    if (unavailable) {
      if (options.required) throw new Error(unavailable);
      log(`tools: SKIPPED ${b.name} ${b.version}: ${unavailable}`);
      continue;
    }
    log(`tools: building ${b.name} ${b.version} ...`);
    const t0 = Date.now();
    const work = fs.mkdtempSync(path.join(os.tmpdir(), `v6fabric-build-${b.name}-`));
    try {
      b.build(work);
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
    const took = seconds(Date.now() - t0);
    fs.writeFileSync(stampPath(b), `built in ${took} on ${new Date().toISOString()}\n`);
    log(`tools: built ${b.name} ${b.version} in ${took}`);
  }
  log(`tools: ready in ${cache} (${seconds(Date.now() - started)})`);
}

if (require.main === module) {
  const args = process.argv.slice(2);
  const known: readonly ToolGroup[] = ["terraform", "kubernetes", "coredns", "calico", "actionlint", "matchbox"];
  const onlyAt = args.indexOf("--only");
  const only = onlyAt >= 0 ? args[onlyAt + 1] : undefined;
  const asked = args.filter((a, i) => !a.startsWith("--") && (onlyAt < 0 || i !== onlyAt + 1));
  const unknown = asked.filter((a) => !(known as readonly string[]).includes(a));
  if (unknown.length > 0) {
    console.error(`tools: unknown group ${unknown.join(", ")}: use ${known.join(", ")}`);
    process.exit(2);
  }
  const groups = asked.length > 0 ? (asked as ToolGroup[]) : known;
  if (args.includes("--list")) {
    for (const b of builds()) {
      const unavailable = isBuilt(b) ? undefined : b.unavailable?.();
      log(`${isBuilt(b) ? "cached " : unavailable ? "no source" : "missing"} ${b.name} ${b.version}: ${unavailable ?? b.outputs.join(", ")}`);
    }
  } else {
    try {
      buildMissing(groups, { only });
    } catch (err) {
      console.error(`tools: ${(err as Error).message}`);
      process.exit(1);
    }
  }
}
