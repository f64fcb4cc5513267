/**
 * Flatcar Ignition (spec 3.3.0) for a node, built as a typed object and serialized
 * once into the device's user data. docs/flatcar-boot.md explains what a node gets
 * and why.
 *
 * CONTRACT used by the constructs (see constructs/cluster-stack.ts):
 * - `renderNodeIgnition(input)` returns the node's IgnitionConfig: the base part
 *   every node gets, composed with the part of its boot role (ignition/parts.ts).
 * - `toUserData(config)` serializes it for metal_device.user_data, packed: all that
 *   is known at synth in one gzip'd merged config (ignition/user-data.ts).
 * - A `NodeFile` is plain `text`, fully known at synth (no cdktf tokens: rendering
 *   rejects them), `base64` (one Terraform expression that yields the whole file
 *   base64-encoded, e.g. Fn.base64encode(pem), or with `gzip: true` compressed and
 *   encoded, Fn.base64gzip(pem)), or `remote` (a pinned download
 *   Ignition verifies against its hash). Apply-time secrets travel only as whole
 *   `base64` files, never inside text.
 * - Text files (and the kubeadm config) that contain the placeholders of
 *   lib/boot-values.ts are written as templates and rendered on the node at boot,
 *   with addresses from the metadata service.
 */
import { BOOT_VALUES } from "../lib/boot-values";
import { METAL_IPV6_PEERS } from "../lib/calico";
import { KubernetesRelease, PinnedDownload } from "../lib/versions";
import { composeConfig } from "./compose";
import { base64Source, hasToken, textResource } from "./node-files";
import { ApiPathInput, apiPathPart, basePart, callerPart, DEFAULT_IPV6_RESOLVERS, EncodedNodeFile, filesPart, initPart, joinPart, nat64Part, Nat64PartInput, NODE_PATHS } from "./parts";
import { escapeTerraformTemplate } from "./terraform-escape";
import { packUserData } from "./user-data";
import { IgnitionConfig } from "./types";

export { API_PATH_NFT_TABLE, DEFAULT_IPV6_RESOLVERS, NODE_PATHS, NODE_UNITS } from "./parts";
export type { ApiPathInput, Nat64PartInput } from "./parts";

/** What a node does at first boot: kubeadm init (the first control plane), join as control plane, join as worker. */
export type BootRole = "init" | "control-plane" | "worker";

export type NodeFile =
  | { readonly path: string; readonly mode: number; readonly text: string }
  | {
      readonly path: string;
      readonly mode: number;
      readonly base64: string;
      /**
       * `base64` holds gzip-compressed contents (Terraform's base64gzip()); Ignition
       * decompresses them (`compression: gzip`).
       * @default false
       */
      readonly gzip?: boolean;
    }
  | { readonly path: string; readonly mode: number; readonly remote: PinnedDownload };

export interface NodeIgnitionInput {
  /** RFC 1123 hostname, also the Kubernetes node name. */
  readonly hostname: string;
  readonly role: BootRole;
  /** Binaries to install, with their hashes. */
  readonly kubernetes: KubernetesRelease;
  /**
   * kubeadm config for this role (YAML, with BOOT_VALUES placeholders, no cdktf tokens);
   * rendered at boot to NODE_PATHS.kubeadmConfig.
   */
  readonly kubeadmConfig: string;
  /**
   * The node-local path to the API servers at the ClusterIP (docs/control-plane.md).
   * Every role but "init" must write NODE_PATHS.apiServers among `files`: the control
   * planes it can reach before it joins.
   */
  readonly apiPath: ApiPathInput;
  /** Files for this node only: PKI on control planes, discovery kubeconfig, addon manifests on init. */
  readonly files: readonly NodeFile[];
  /** Manifests (paths among `files`) to `kubectl apply` after `kubeadm init`, in order. Only for role "init". */
  readonly addonManifests?: readonly string[];
  /**
   * IPv6 resolvers written to NODE_PATHS.kubeletResolvConf (point `KubeletConfiguration.resolvConf` there).
   * @default DEFAULT_IPV6_RESOLVERS
   */
  readonly dnsResolvers?: readonly string[];
  /**
   * IPv6 BGP peers of the cluster (the BGPPeers' addresses): the node routes to them via
   * its gateway and fails a unit when the metadata lists other peers for it.
   * @default METAL_IPV6_PEERS of lib/calico.ts
   */
  readonly bgpPeers?: readonly string[];
  /**
   * Shell commands (bash, run as root, `set -euo pipefail`) the kubeadm unit runs right
   * before kubeadm and right after it succeeded, once per node. On failure the unit retries.
   * @default - none
   */
  readonly kubeadmHooks?: { readonly beforeKubeadm?: string; readonly afterKubeadm?: string };
  /**
   * Extra systemd units for this node (enabled unless `enabled: false`). Order them against
   * NODE_UNITS (e.g. `Before=kubelet.service`); each needs an [Install] section when enabled.
   * @default - none
   */
  readonly units?: readonly NodeUnit[];
  /**
   * NAT64 for the node's pods: tayga, its config and the nftables ruleset (lib/nat64.ts).
   * @default - no NAT64 (NAT64_ENABLED=false)
   */
  readonly nat64?: Nat64PartInput;
}

/** A systemd unit a caller adds to a node. */
export interface NodeUnit {
  /** Unit file name, e.g. `kubernetes-api-local-address.service`. */
  readonly name: string;
  readonly contents: string;
  /**
   * Whether Ignition enables the unit.
   * @default true
   */
  readonly enabled?: boolean;
}

export class NodeIgnitionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "NodeIgnitionError";
  }
}

const PLACEHOLDERS = Object.values(BOOT_VALUES);

function hasBootPlaceholder(text: string): boolean {
  return PLACEHOLDERS.some((p) => text.includes(p));
}

function validate(input: NodeIgnitionInput): void {
  const where = `node ${input.hostname}`;
  const problems: string[] = [];
  if (input.kubeadmConfig.trim() === "") problems.push(`kubeadmConfig is empty: every role needs a kubeadm config`);
  if (hasToken(input.kubeadmConfig)) {
    problems.push(`kubeadmConfig holds a Terraform reference (cdktf token): put secrets in a file of their own and use a boot placeholder (lib/boot-values.ts)`);
  }
  const paths = new Set<string>();
  for (const file of input.files) {
    if (!file.path.startsWith("/") || file.path.includes("/../") || file.path.endsWith("/")) {
      problems.push(`file path "${file.path}" is not valid: use an absolute path to a file`);
    }
    if (file.path === "/usr" || file.path.startsWith("/usr/")) problems.push(`file path "${file.path}" is not valid: Flatcar's /usr is read-only`);
    if (file.path === NODE_PATHS.kubeadmConfig) problems.push(`file path "${file.path}" is reserved for the kubeadm config: pass it as kubeadmConfig`);
    if (!Number.isInteger(file.mode) || file.mode < 0 || file.mode > 0o7777) problems.push(`file ${file.path}: mode ${file.mode} is not a valid permission mode`);
    if ("text" in file && hasToken(file.text)) {
      problems.push(`file ${file.path}: text holds a Terraform reference (cdktf token): text must be known at synth; pass the whole file as \`base64\` (one Terraform expression, e.g. Fn.base64encode(value))`);
    }
    if ("remote" in file && !/^sha(256|512)-[0-9a-f]+$/.test(file.remote.hash)) {
      problems.push(`file ${file.path}: remote hash "${file.remote.hash}" is not valid: use sha256-<hex> or sha512-<hex>`);
    }
    paths.add(file.path);
  }
  if (input.role !== "init" && !paths.has(NODE_PATHS.apiServers)) {
    problems.push(`role "${input.role}" reaches the API only through the control planes it knows: write their addresses to ${NODE_PATHS.apiServers} (one a line) among the node's files`);
  }
  if (!/^[0-9a-fA-F:]+$/.test(input.apiPath.kubernetesServiceIp) || !input.apiPath.kubernetesServiceIp.includes(":")) {
    problems.push(`apiPath.kubernetesServiceIp "${input.apiPath.kubernetesServiceIp}" is not an IPv6 address`);
  }
  if (!Number.isInteger(input.apiPath.port) || input.apiPath.port < 1 || input.apiPath.port > 65535) problems.push(`apiPath.port ${input.apiPath.port} is not a TCP port (1-65535)`);
  const addons = input.addonManifests ?? [];
  if (addons.length > 0 && input.role !== "init") {
    problems.push(`addonManifests are only applied by role "init", not by role "${input.role}"`);
  }
  for (const manifest of addons) {
    if (!paths.has(manifest)) problems.push(`addon manifest ${manifest} is not among the node's files`);
  }
  for (const peer of input.bgpPeers ?? []) {
    if (!/^[0-9a-fA-F:]+$/.test(peer) || !peer.includes(":")) problems.push(`BGP peer "${peer}" is not an IPv6 address`);
  }
  if (input.bgpPeers && input.bgpPeers.length === 0) problems.push(`bgpPeers is empty: give at least one IPv6 BGP peer`);
  for (const resolver of input.dnsResolvers ?? []) {
    if (!/^[0-9a-fA-F:]+$/.test(resolver) || !resolver.includes(":")) problems.push(`DNS resolver "${resolver}" is not an IPv6 address`);
  }
  for (const unit of input.units ?? []) {
    if (!/^[A-Za-z0-9:_.@-]+\.(service|socket|timer|path|mount|target)$/.test(unit.name)) problems.push(`unit name "${unit.name}" is not a valid systemd unit name`);
    if ((unit.enabled ?? true) && !/^\[Install\]/m.test(unit.contents)) problems.push(`unit ${unit.name} is enabled but has no [Install] section`);
  }
  if (input.dnsResolvers && input.dnsResolvers.length === 0) problems.push(`dnsResolvers is empty: give at least one IPv6 resolver`);
  if (problems.length > 0) throw new NodeIgnitionError(`${where}: ${problems.join("; ")}`);
}

function encodeFile(file: NodeFile): EncodedNodeFile {
  const { path, mode } = file;
  if ("text" in file) return { path, mode, contents: textResource(file.text), template: hasBootPlaceholder(file.text) };
  if ("base64" in file) {
    return { path, mode, contents: { source: base64Source(file.base64), ...(file.gzip ? { compression: "gzip" as const } : {}) }, template: false };
  }
  return { path, mode, contents: { source: file.remote.url, verification: { hash: file.remote.hash } }, template: false };
}

export function renderNodeIgnition(input: NodeIgnitionInput): IgnitionConfig {
  validate(input);
  // The kubeadm config always goes through the template tree: it is rendered at
  // every boot, so it exists (with this node's addresses) before kubeadm runs.
  // 0600, like kubeadm's own files under /etc/kubernetes.
  const kubeadmConfig: EncodedNodeFile = { path: NODE_PATHS.kubeadmConfig, mode: 0o600, contents: textResource(input.kubeadmConfig), template: true };
  // The add-on manifests go last, in their order (addons.list gives the apply order): they
  // are about half the first control plane's boot config, and among the other files they
  // would push the scripts and the units that run them beyond deflate's 32 KiB window
  // (ignition/user-data.ts). Ignition writes the same files in any order.
  const addons = new Set(input.addonManifests ?? []);
  const encoded = input.files.map(encodeFile);
  return composeConfig(
    basePart({
      hostname: input.hostname,
      kubernetes: input.kubernetes,
      dnsResolvers: input.dnsResolvers ?? DEFAULT_IPV6_RESOLVERS,
      bgpPeers: input.bgpPeers ?? METAL_IPV6_PEERS,
    }),
    input.role === "init" ? initPart(input.addonManifests ?? []) : joinPart(),
    filesPart([kubeadmConfig, ...encoded.filter((f) => !addons.has(f.path))]),
    apiPathPart(input.apiPath, input.role !== "worker"),
    callerPart(input.units ?? [], input.kubeadmHooks ?? {}),
    ...(input.nat64 ? [nat64Part(input.nat64)] : []),
    filesPart(encoded.filter((f) => addons.has(f.path))),
  );
}

/**
 * Serializes a node's config for `metal_device.user_data`: packed (what is known at synth
 * in one gzip'd merged config, ignition/user-data.ts), compact JSON, with Terraform
 * template syntax escaped.
 */
export function toUserData(config: IgnitionConfig): string {
  return escapeTerraformTemplate(JSON.stringify(packUserData(config)));
}

export { hasToken };
export { packUserData, unpackUserData } from "./user-data";
