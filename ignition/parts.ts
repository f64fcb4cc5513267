/**
 * The parts a node's Ignition config is composed of: one base part every node gets
 * (docs/flatcar-boot.md explains each piece and its source) and one part per boot
 * role. Nothing here is per node except the hostname and the files the caller
 * passes: addresses are filled in on the node at boot (lib/boot-values.ts).
 */
import { BOOT_VALUES } from "../lib/boot-values";
import { EXCLUDE_FROM_SERVICE_ANNOUNCEMENTS_LABEL } from "../lib/kubeadm";
import { KubernetesRelease, PinnedDownload } from "../lib/versions";
import { IgnitionPart } from "./compose";
import { textResource } from "./node-files";
import { renderTemplate } from "./templates";
import { IgnitionFile, IgnitionResource, IgnitionUnit } from "./types";

/** Where things live on a node. Stable: units, scripts and docs refer to these paths. */
export const NODE_PATHS = {
  /** Boot scripts. /opt because Flatcar's /usr is read-only. */
  scriptDir: "/opt/v6fabric/bin",
  /** Kubernetes binaries; Flatcar's documented place for extra binaries (on the default PATH). */
  binDir: "/opt/bin",
  /** Files with boot placeholders; rendered at boot to the same path below `/`. */
  templateDir: "/etc/v6fabric/templates",
  /** Optional executables `before-kubeadm` and `after-kubeadm`, run by the kubeadm unit around kubeadm. */
  hookDir: "/etc/v6fabric/hooks",
  /** Stamps that make the first-boot units run once. */
  stateDir: "/var/lib/v6fabric",
  /** The kubeadm config of this node, rendered at boot from its template. */
  kubeadmConfig: "/etc/kubernetes/kubeadm.yaml",
  /** Add-on manifests to apply after `kubeadm init`, one path a line (init node only). */
  addonList: "/etc/v6fabric/addons.list",
  /** IPv6-only resolvers for the kubelet (`KubeletConfiguration.resolvConf`), hence for CoreDNS. */
  kubeletResolvConf: "/etc/kubernetes/resolv.conf",
  /** The tayga Debian package as Ignition downloads it, and the binary the nat64 script unpacks from it. */
  taygaDeb: "/opt/v6fabric/tayga.deb",
  taygaBin: "/opt/bin/tayga",
  taygaConfig: "/etc/v6fabric/tayga.conf",
  /** The NAT64 nftables ruleset (lib/nat64.ts), loaded by the nat64 script. */
  nat64Rules: "/etc/v6fabric/nat64.nft",
  /**
   * The API servers Terraform knew when it wrote the node's user data, one IPv6 address a
   * line (written by the caller; api-path.sh reads it).
   */
  apiServers: "/etc/v6fabric/api-servers",
} as const;

/** Unit names other renderers may order against (e.g. a node-local API proxy `Before=` kubeadm). */
export const NODE_UNITS = {
  bootValues: "v6fabric-boot-values.service",
  bgpPeerRoutes: "v6fabric-bgp-peer-routes.service",
  bgpPeerRoutesTimer: "v6fabric-bgp-peer-routes.timer",
  serviceAnnouncement: "v6fabric-service-announcement.service",
  serviceAnnouncementTimer: "v6fabric-service-announcement.timer",
  withdrawAtBoot: "v6fabric-withdraw-at-boot.service",
  withdrawAtShutdown: "v6fabric-withdraw-at-shutdown.service",
  kubeadm: "v6fabric-kubeadm.service",
  addons: "v6fabric-addons.service",
  nat64: "v6fabric-nat64.service",
  apiPath: "v6fabric-api-path.service",
} as const;

/** nftables table of the node-local API path (`nft list table ip6 v6fabric_api_path` on a node). */
export const API_PATH_NFT_TABLE = "v6fabric_api_path";

/**
 * Public IPv6 resolvers (Google Public DNS, Cloudflare). Equinix's resolvers are
 * IPv4-only and pods have no IPv4, so CoreDNS must forward to IPv6 resolvers.
 */
export const DEFAULT_IPV6_RESOLVERS: readonly string[] = ["2001:4860:4860::8888", "2606:4700:4700::1111", "2001:4860:4860::8844"];

const TEMPLATE_VALUES = {
  SCRIPT_DIR: NODE_PATHS.scriptDir,
  TEMPLATE_DIR: NODE_PATHS.templateDir,
  STATE_DIR: NODE_PATHS.stateDir,
  KUBEADM_CONFIG: NODE_PATHS.kubeadmConfig,
  ADDON_LIST: NODE_PATHS.addonList,
  HOOK_DIR: NODE_PATHS.hookDir,
} as const;

function pick<K extends keyof typeof TEMPLATE_VALUES>(...keys: K[]): Record<K, string> {
  const values = {} as Record<K, string>;
  for (const key of keys) values[key] = TEMPLATE_VALUES[key];
  return values;
}

/** A file Ignition writes from inline text, owned by root. */
export function inlineFile(path: string, mode: number, text: string): IgnitionFile {
  return { path, mode, overwrite: true, contents: textResource(text) };
}

function downloadedFile(path: string, mode: number, download: PinnedDownload): IgnitionFile {
  return { path, mode, overwrite: true, contents: { source: download.url, verification: { hash: download.hash } } };
}

/**
 * A boot script without its comment lines and indentation, like unitText: the commented
 * source is in ignition/scripts/, and every node's user data counts against the size
 * budget (docs/flatcar-boot.md). The scripts hold no heredocs, so a line starting with
 * `#` is always a comment; no string spans lines, so leading tabs are never data (a test
 * compares bash's parse of each shipped script with its source's).
 */
function script(name: string, values: Readonly<Record<string, string>> = {}): IgnitionFile {
  const [shebang, ...rest] = renderTemplate(`scripts/${name}.sh`, values).split("\n");
  if (!shebang.startsWith("#!") || rest.some((line) => /(?<!<)<<(?!<)/.test(line))) {
    throw new Error(`ignition/scripts/${name}.sh must start with #! and hold no heredoc (comment lines are stripped)`);
  }
  const text = [shebang, `# From ignition/scripts/${name}.sh (v6fabric; the reasons are commented there)`, ...rest.filter((line) => !/^\s*#/.test(line)).map((line) => line.replace(/^\t+/, ""))].join("\n");
  return inlineFile(`${NODE_PATHS.scriptDir}/${name}`, 0o755, text);
}

/** A config file from ignition/files/ without its comment lines (all are `#` comments), like unitText. */
function configText(name: string): string {
  const lines = renderTemplate(`files/${name}`).split("\n").filter((line) => !line.startsWith("#"));
  return [`# v6fabric: commented in ignition/files/${name}`, ...lines].join("\n");
}

/** A unit from ignition/units/; `enabled: false` for units only a timer starts. */
function unit(name: string, values: Readonly<Record<string, string>>, enabled = true): IgnitionUnit {
  return { name, enabled, contents: unitText(name, values) };
}

/**
 * A unit template without its comment lines: the commented source is in the project
 * (ignition/units/), and every node's user data counts against the size budget, gzip'd
 * or not (docs/flatcar-boot.md). One line says where the comments are.
 */
function unitText(name: string, values: Readonly<Record<string, string>> = {}): string {
  const lines = renderTemplate(`units/${name}`, values)
    .split("\n")
    .filter((line) => !line.startsWith("#"));
  while (lines[0] === "") lines.shift();
  return [`# v6fabric: commented in ignition/units/${name}`, ...lines].join("\n");
}

export interface BasePartInput {
  readonly hostname: string;
  readonly kubernetes: KubernetesRelease;
  readonly dnsResolvers: readonly string[];
  /** IPv6 BGP peers the cluster's BGPPeers name; the node routes to them and checks them against the metadata. */
  readonly bgpPeers: readonly string[];
}

/** What every node gets, whatever its role. */
export function basePart(input: BasePartInput): IgnitionPart {
  const binaries = (["kubeadm", "kubelet", "kubectl"] as const).map((name) =>
    downloadedFile(`${NODE_PATHS.binDir}/${name}`, 0o755, input.kubernetes[name]),
  );
  return {
    files: [
      inlineFile("/etc/hostname", 0o644, `${input.hostname}\n`),
      ...binaries,
      inlineFile("/etc/modules-load.d/v6fabric-kubernetes.conf", 0o644, configText("modules-load-kubernetes.conf")),
      inlineFile("/etc/sysctl.d/80-v6fabric-kubernetes.conf", 0o644, configText("sysctl-kubernetes.conf")),
      inlineFile(NODE_PATHS.kubeletResolvConf, 0o644, resolvConf(input.dnsResolvers)),
      inlineFile("/etc/flatcar/update.conf", 0o644, configText("update.conf")),
      inlineFile("/etc/v6fabric/README", 0o644, renderTemplate("files/README", pick("SCRIPT_DIR", "TEMPLATE_DIR", "STATE_DIR", "ADDON_LIST"))),
      script("render-boot-values", {
        TEMPLATE_DIR: NODE_PATHS.templateDir,
        NODE_IPV6_PLACEHOLDER: BOOT_VALUES.nodeIpv6,
        NODE_PRIVATE_IPV4_PLACEHOLDER: BOOT_VALUES.nodePrivateIpv4,
      }),
      script("bgp-peer-routes", { BGP_PEERS: input.bgpPeers.join(" ") }),
      script("service-announcement", { NODE_NAME: input.hostname, LABEL: EXCLUDE_FROM_SERVICE_ANNOUNCEMENTS_LABEL }),
      script("kubeadm-bootstrap", {
        ...pick("KUBEADM_CONFIG", "STATE_DIR", "HOOK_DIR"),
        NODE_IPV6_PLACEHOLDER: BOOT_VALUES.nodeIpv6,
        NODE_PRIVATE_IPV4_PLACEHOLDER: BOOT_VALUES.nodePrivateIpv4,
      }),
    ],
    units: [
      // Flatcar's stock containerd config already uses the systemd cgroup driver
      // (SystemdCgroup = true since 2969.0.0); enabling it is all kubeadm needs.
      { name: "containerd.service", enabled: true },
      {
        name: "kubelet.service",
        enabled: true,
        contents: unitText("kubelet.service"),
        dropins: [{ name: "10-kubeadm.conf", contents: unitText("10-kubeadm.conf") }],
      },
      // Reboots are left to a cluster-aware operator: locksmithd's etcd lock does
      // not work with etcd 3.4+, and its default strategy reboots at will.
      { name: "locksmithd.service", mask: true },
      unit(NODE_UNITS.bootValues, pick("SCRIPT_DIR", "TEMPLATE_DIR")),
      unit(NODE_UNITS.bgpPeerRoutes, pick("SCRIPT_DIR")),
      unit(NODE_UNITS.bgpPeerRoutesTimer, {}),
      unit(NODE_UNITS.serviceAnnouncement, pick("SCRIPT_DIR"), false),
      unit(NODE_UNITS.serviceAnnouncementTimer, {}),
      unit(NODE_UNITS.withdrawAtBoot, pick("SCRIPT_DIR")),
      unit(NODE_UNITS.withdrawAtShutdown, pick("SCRIPT_DIR")),
      unit(NODE_UNITS.kubeadm, pick("SCRIPT_DIR", "STATE_DIR", "KUBEADM_CONFIG")),
    ],
  };
}

function resolvConf(resolvers: readonly string[]): string {
  return [
    "# IPv6 resolvers for the kubelet and so for CoreDNS (pods have no IPv4); written by Ignition.",
    ...resolvers.map((r) => `nameserver ${r}`),
    "",
  ].join("\n");
}

/** What a node needs to translate NAT64 for its pods (lib/nat64.ts renders the texts). */
export interface Nat64PartInput {
  /** The tayga package: the operator's URL (NAT64_TAYGA_PACKAGE_URL), the hash pinned in lib/versions.ts TAYGA. */
  readonly taygaDeb: PinnedDownload;
  /** tayga.conf text. */
  readonly taygaConfig: string;
  /** nftables ruleset text. */
  readonly ruleset: string;
  readonly prefix: string;
  readonly pool: string;
  readonly device: string;
  readonly dataDir: string;
}

/** NAT64 on every node: tayga from its pinned package, its config, the ruleset, and the unit that runs them. */
export function nat64Part(input: Nat64PartInput): IgnitionPart {
  const paths = { TAYGA_BIN: NODE_PATHS.taygaBin, TAYGA_CONFIG: NODE_PATHS.taygaConfig };
  return {
    files: [
      downloadedFile(NODE_PATHS.taygaDeb, 0o644, input.taygaDeb),
      inlineFile(NODE_PATHS.taygaConfig, 0o644, input.taygaConfig),
      inlineFile(NODE_PATHS.nat64Rules, 0o644, input.ruleset),
      script("nat64", {
        ...paths,
        TAYGA_DEB: NODE_PATHS.taygaDeb,
        NAT64_RULES: NODE_PATHS.nat64Rules,
        DATA_DIR: input.dataDir,
        DEVICE: input.device,
        PREFIX: input.prefix,
        POOL: input.pool,
      }),
    ],
    units: [unit(NODE_UNITS.nat64, { ...pick("SCRIPT_DIR"), ...paths })],
  };
}

/** How a node reaches the API servers (docs/control-plane.md, "The node-local API path"). */
export interface ApiPathInput {
  /** The `kubernetes` Service ClusterIP: the address of controlPlaneEndpoint. */
  readonly kubernetesServiceIp: string;
  /** Port of controlPlaneEndpoint; the API servers listen on the same one (docs/control-plane.md, "Port 443"). */
  readonly port: number;
}

/**
 * Every node's own path to the API servers at the ClusterIP (ignition/scripts/api-path.sh):
 * nftables rules in the host's output hook, kept pointing at ready API servers. A
 * control plane (init included) counts itself as a candidate; the others come from
 * NODE_PATHS.apiServers (written by the caller from Terraform) and from the cluster.
 */
export function apiPathPart(input: ApiPathInput, controlPlane: boolean): IgnitionPart {
  return {
    files: [
      script("api-path", {
        KUBERNETES_SERVICE_IP: input.kubernetesServiceIp,
        API_PORT: String(input.port),
        NFT_TABLE: API_PATH_NFT_TABLE,
        CONTROL_PLANE: controlPlane ? "yes" : "no",
        API_SERVERS_FILE: NODE_PATHS.apiServers,
        STATE_DIR: NODE_PATHS.stateDir,
      }),
    ],
    units: [unit(NODE_UNITS.apiPath, pick("SCRIPT_DIR"))],
  };
}

/** The kubeadm command of a role, as the kubeadm unit's drop-in. */
function kubeadmCommand(command: "init" | "join"): IgnitionUnit {
  return { name: NODE_UNITS.kubeadm, dropins: [{ name: "10-role.conf", contents: `[Service]\nEnvironment=KUBEADM_COMMAND=${command}\n` }] };
}

/** The first control plane: `kubeadm init`, then the add-ons. */
export function initPart(addonManifests: readonly string[]): IgnitionPart {
  return {
    files: [
      script("apply-addons", pick("STATE_DIR", "ADDON_LIST")),
      inlineFile(NODE_PATHS.addonList, 0o644, addonManifests.map((m) => `${m}\n`).join("")),
    ],
    units: [kubeadmCommand("init"), unit(NODE_UNITS.addons, pick("SCRIPT_DIR", "STATE_DIR", "ADDON_LIST"))],
  };
}

/** Extra units and kubeadm hooks a caller asked for (e.g. the API address on lo of control planes). */
export function callerPart(units: readonly NodeUnitInput[], hooks: KubeadmHooksInput): IgnitionPart {
  const hook = (name: string, command: string | undefined) =>
    command === undefined ? [] : [inlineFile(`${NODE_PATHS.hookDir}/${name}`, 0o755, `#!/bin/bash\nset -euo pipefail\n${command}\n`)];
  return {
    files: [...hook("before-kubeadm", hooks.beforeKubeadm), ...hook("after-kubeadm", hooks.afterKubeadm)],
    units: units.map((u) => ({ name: u.name, enabled: u.enabled ?? true, contents: u.contents })),
  };
}

export interface NodeUnitInput {
  readonly name: string;
  readonly contents: string;
  readonly enabled?: boolean;
}

export interface KubeadmHooksInput {
  readonly beforeKubeadm?: string;
  readonly afterKubeadm?: string;
}

/** Further control planes and workers: `kubeadm join` (the config says which kind). */
export function joinPart(): IgnitionPart {
  return { units: [kubeadmCommand("join")] };
}

/** The caller's per-node files; those holding boot placeholders go to the template tree. */
export function filesPart(files: readonly EncodedNodeFile[]): IgnitionPart {
  return {
    files: files.map((f) => ({
      path: f.template ? `${NODE_PATHS.templateDir}${f.path}` : f.path,
      mode: f.mode,
      overwrite: true,
      contents: f.contents,
    })),
  };
}

/** A caller's file with its Ignition contents; `template` files are rendered at boot (lib/boot-values.ts). */
export interface EncodedNodeFile {
  readonly path: string;
  readonly mode: number;
  readonly contents: IgnitionResource;
  readonly template: boolean;
}
