/**
 * Deployment settings: the one place that reads the environment.
 *
 * Every setting has a documented default so `npm run synth` works with nothing set.
 * `loadSettings` validates them all and reports every problem at once, each naming
 * the setting, the value and what would be valid. Constructs never read process.env.
 *
 * It also stops on mistakes that would otherwise pass silently: a variable that looks
 * like a misspelled setting (WORKERS_COUNT, METAL_METR0), a setting exported empty, a
 * source prefix that opens a port to the whole Internet without an acknowledgement, and
 * a Terraform Cloud setting without the organization it needs.
 *
 * Secrets are not settings: METAL_AUTH_TOKEN is read by the provider itself, and the
 * optional BGP password travels as a sensitive Terraform variable (TF_VAR_...), so
 * neither can end up in cdktf.out/.
 */
import { AddressPlan, AddressPlanError, Ipv6Cidr, planAddresses } from "./address-plan";
import { DEFAULT_KUBERNETES_VERSION, FLATCAR_CONTAINERD_MAJOR, KUBERNETES_RELEASES, LAST_KUBERNETES_MINOR_WITH_CONTAINERD_1, TAYGA } from "./versions";
import { POD_BLOCK_PREFIX_LENGTH } from "./calico";
import { Address6 } from "ip-address";
import { DEFAULT_IPV6_RESOLVERS } from "../ignition/parts";
import { PrefixBudgetError, checkPrefixBudget } from "./prefix-budget";
import { distance } from "fastest-levenshtein";
import * as fs from "node:fs";
import { Inventory, InventoryError, parseInventory } from "./inventory";

export type ControlPlaneCount = 1 | 3 | 5;
export type FlatcarChannel = "stable" | "beta" | "alpha" | "lts";
export type BillingCycle = "hourly" | "monthly";
/** Where the nodes run: Equinix Metal devices, or the operator's own machines PXE-booted through Matchbox. */
export type NodeTarget = "metal" | "matchbox";

/** The Matchbox target's settings (NODE_TARGET=matchbox). */
export interface MatchboxSettings {
  /** MATCHBOX_INVENTORY as given (a path), and what it holds. */
  readonly inventoryPath: string;
  readonly inventory: Inventory;
  /** Where machines reach Matchbox's HTTP endpoint (iPXE, Ignition, metadata). */
  readonly httpEndpoint: string;
  /** Matchbox's gRPC API (host:port) the provider applies profiles and groups through. */
  readonly rpcEndpoint: string;
}

export interface TerraformCloudSettings {
  /** Terraform Cloud organization (TF_CLOUD_ORGANIZATION). */
  readonly organization: string;
  /** Prefix of every workspace name; the stack name follows it. */
  readonly workspacePrefix: string;
  /** Terraform Cloud hostname, for Terraform Enterprise. */
  readonly hostname: string;
}

/** The per-cluster configuration stack's settings (constructs/cluster-config-stack.ts). */
export interface ConfigStackSettings {
  /** Where its Terraform runs from; an API_ALLOWED_PREFIXES entry or the cluster's own ranges admit it. */
  readonly runnerPrefix: Ipv6Cidr;
  /** Whether its plan imports the objects first boot applied (CONFIG_STACK_ADOPT). */
  readonly adoptFirstBoot: boolean;
  /** How long the cluster stack's first apply waits for first boot's add-ons; 0: no wait (CONFIG_STACK_WAIT_MINUTES). */
  readonly waitMinutes: number;
}

export interface ClusterSettings {
  readonly clusterName: string;
  readonly metalProjectId: string;
  readonly metro: string;
  readonly addressPlan: AddressPlan;
  readonly controlPlaneCount: ControlPlaneCount;
  readonly workerCount: number;
  readonly nodePlan: string;
  readonly billingCycle: BillingCycle;
  readonly flatcarChannel: FlatcarChannel;
  readonly kubernetesVersion: string;
  readonly clusterDomain: string;
  /** The project's local BGP ASN (Metal's customer ASN). */
  readonly bgpAsn: number;
  /** Whether the project's BGP sessions use an MD5 password; its value comes from TF_VAR_metal_bgp_md5_password. */
  readonly bgpMd5Enabled: boolean;
  /** Whether the app adopts the existing project and sets its local BGP config (constructs/metal-project-bgp.ts). */
  readonly manageProjectBgp: boolean;
  /** `externalTrafficPolicy: Local` Service addresses one node may announce (lib/prefix-budget.ts). */
  readonly localServiceRoutes: number;
  /** Project SSH key IDs to install for the `core` user; empty = the project's keys, as Metal does by default. */
  readonly projectSshKeyIds: readonly string[];
  /** Sources allowed to reach the API server from outside the cluster (API_ALLOWED_PREFIXES); empty = the cluster only. */
  readonly apiAllowedPrefixes: readonly Ipv6Cidr[];
  /** Sources allowed to reach SSH on every node (ADMIN_ALLOWED_PREFIXES); empty = SSH closed. */
  readonly adminAllowedPrefixes: readonly Ipv6Cidr[];
  /** Whether every node translates NAT64 for its pods and cluster DNS synthesizes DNS64 answers (docs/nat64.md). */
  readonly nat64Enabled: boolean;
  /** Where nodes download the pinned tayga package (NAT64_TAYGA_PACKAGE_URL); used only with NAT64. */
  readonly taygaPackageUrl: string;
  /** IPv6 resolvers CoreDNS forwards to, also the kubelet's resolv.conf (DNS_UPSTREAM_RESOLVERS). */
  readonly dnsUpstreamResolvers: readonly string[];
  /** The configuration stack (CONFIG_STACK_RUNNER_PREFIX), or undefined when the cluster has none. */
  readonly configStack?: ConfigStackSettings;
  /** Terraform Cloud backend, or undefined for the local backend. */
  readonly terraformCloud?: TerraformCloudSettings;
  /** NODE_TARGET: metal (the default) or matchbox. */
  readonly target: NodeTarget;
  /** Set when target is "matchbox": the machines come from its inventory. */
  readonly matchbox?: MatchboxSettings;
}

/** What a user sees about one setting: in the README, in .envrc.local.example, in errors. */
export interface SettingDoc {
  readonly name: string;
  /** Default as written in the environment; "" means unset. */
  readonly default: string;
  readonly description: string;
  /**
   * Whether `NAME=` (set, but empty or blank) means the default. True only for settings
   * whose default is empty (the lists and the Terraform Cloud names), and their
   * description says what empty means. For every other setting an empty value is an
   * error: it is usually `export NAME=$VAR` with VAR unset, and silently using the
   * default would deploy something else than the operator asked for.
   * @default false
   */
  readonly emptyMeansDefault?: boolean;
}

export class SettingsError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`invalid settings:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "SettingsError";
  }
}

/** Thrown by a parser with the part of the message after "NAME=value is not valid: ". */
class Invalid extends Error {}

type Env = Readonly<Record<string, string | undefined>>;

interface SettingSpec<T> extends SettingDoc {
  /** Every setting decides (see SettingDoc). */
  readonly emptyMeansDefault: boolean;
  parse(value: string): T;
}

const DNS_LABEL = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;
/** Node hostnames are `<cluster>-cp-<n>` / `<cluster>-worker-<nn>`; keep room for that in 63 characters. */
export const MAX_CLUSTER_NAME_LENGTH = 40;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** Upper bound that keeps plans reviewable; raise it deliberately if a cluster needs more. */
export const MAX_WORKERS = 100;

function wholeNumber(value: string, min: number, max: number): number {
  if (!/^\d+$/.test(value)) throw new Invalid(`must be a whole number from ${min} to ${max}`);
  const n = Number(value);
  if (n < min || n > max) throw new Invalid(`must be a whole number from ${min} to ${max}`);
  return n;
}

function oneOf<T extends string>(allowed: readonly T[], why = "") {
  return (value: string): T => {
    if (!(allowed as readonly string[]).includes(value)) throw new Invalid(`must be one of ${allowed.join(", ")}${why}`);
    return value as T;
  };
}

/** "a", "a and b", "a, b and c". */
function andList(items: readonly string[]): string {
  return items.length <= 1 ? items.join("") : `${items.slice(0, -1).join(", ")} and ${items[items.length - 1]}`;
}

function list(value: string): string[] {
  return value
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
}

const CLUSTER_NAME: SettingSpec<string> = {
  name: "CLUSTER_NAME",
  default: "v6fabric",
  emptyMeansDefault: false,
  description: "Cluster name: prefix of node hostnames, tags and stack name. Lower-case RFC 1123 label, at most 40 characters.",
  parse(value) {
    if (!DNS_LABEL.test(value) || value.length > MAX_CLUSTER_NAME_LENGTH) {
      throw new Invalid(
        `must be a lower-case RFC 1123 label (a-z, 0-9 and "-", starting and ending with a letter or digit) of at most ${MAX_CLUSTER_NAME_LENGTH} characters`,
      );
    }
    return value;
  },
};

const METAL_PROJECT_ID: SettingSpec<string> = {
  name: "METAL_PROJECT_ID",
  default: "00000000-0000-0000-0000-000000000000",
  emptyMeansDefault: false,
  description: "Equinix Metal project UUID the devices are created in. The default is a placeholder that synthesizes but cannot deploy.",
  parse(value) {
    if (!UUID.test(value)) throw new Invalid("must be a project UUID like 6f1f2c1e-8d3b-4b8e-9a55-3b8f0c7f6a10 (lower-case hex)");
    return value;
  },
};

const METAL_METRO: SettingSpec<string> = {
  name: "METAL_METRO",
  default: "da",
  emptyMeansDefault: false,
  description: "Metro code where the devices run (the project's IPv6 /56 is per metro), e.g. da, am, sv.",
  parse(value) {
    if (!/^[a-z]{2}$/.test(value)) throw new Invalid("must be a two-letter lower-case metro code such as da, am or sv");
    return value;
  },
};

const CLUSTER_IPV6_BLOCK: SettingSpec<AddressPlan> = {
  name: "CLUSTER_IPV6_BLOCK",
  default: "2001:db8:0:ab00::/56",
  emptyMeansDefault: false,
  description:
    "The project's public IPv6 /56 in the metro (see the Metal console or `metal ip get`). The default is from the 2001:db8::/32 documentation range: it synthesizes, and a deploy stops at plan time until you set the real block.",
  parse(value) {
    try {
      return planAddresses(value);
    } catch (err) {
      if (err instanceof AddressPlanError) throw new Invalid(err.message);
      throw err;
    }
  },
};

const CONTROL_PLANE_COUNT: SettingSpec<ControlPlaneCount> = {
  name: "CONTROL_PLANE_COUNT",
  default: "1",
  emptyMeansDefault: false,
  description: "Number of control-plane nodes with stacked etcd: 1, 3 or 5 (etcd needs an odd number of members).",
  parse(value) {
    if (!/^\d+$/.test(value)) throw new Invalid("must be a whole number: 1, 3 or 5 (etcd needs an odd number of members)");
    const count = Number(value);
    if (count % 2 === 0) throw new Invalid("etcd needs an odd number of members: use 1, 3 or 5");
    if (count > 5) throw new Invalid("use 1, 3 or 5: the app supports at most 5 etcd members");
    return count as ControlPlaneCount;
  },
};

const WORKER_COUNT: SettingSpec<number> = {
  name: "WORKER_COUNT",
  default: "2",
  emptyMeansDefault: false,
  description: `Number of worker nodes, 0 to ${MAX_WORKERS}. Raising it adds nodes that join and peer by themselves.`,
  parse: (value) => wholeNumber(value, 0, MAX_WORKERS),
};

const NODE_PLAN: SettingSpec<string> = {
  name: "NODE_PLAN",
  default: "c3.small.x86",
  emptyMeansDefault: false,
  description: "Metal server plan for every node, e.g. c3.small.x86, m3.small.x86.",
  parse(value) {
    if (!/^[a-z0-9]+(\.[a-z0-9]+)+$/.test(value)) throw new Invalid("must be a Metal plan slug such as c3.small.x86");
    return value;
  },
};

const BILLING_CYCLE: SettingSpec<BillingCycle> = {
  name: "METAL_BILLING_CYCLE",
  default: "hourly",
  emptyMeansDefault: false,
  description: "Device billing cycle: hourly or monthly.",
  parse: oneOf<BillingCycle>(["hourly", "monthly"]),
};

const FLATCAR_CHANNEL: SettingSpec<FlatcarChannel> = {
  name: "FLATCAR_CHANNEL",
  default: "stable",
  emptyMeansDefault: false,
  description: "Flatcar release channel the devices are installed from (operating system flatcar_<channel>). lts ships containerd 1.x, which Kubernetes 1.36 no longer supports, so it is refused with it.",
  parse: oneOf<FlatcarChannel>(["stable", "beta", "alpha", "lts"]),
};

const KUBERNETES_VERSION: SettingSpec<string> = {
  name: "KUBERNETES_VERSION",
  default: DEFAULT_KUBERNETES_VERSION,
  emptyMeansDefault: false,
  description: "Kubernetes release installed on every node. Only versions whose binary hashes are pinned in lib/versions.ts are accepted.",
  parse(value) {
    const v = value.replace(/^v/, "");
    if (!(v in KUBERNETES_RELEASES)) {
      throw new Invalid(`no pinned binary hashes for it; pinned versions: ${Object.keys(KUBERNETES_RELEASES).join(", ")} (add one to lib/versions.ts)`);
    }
    return v;
  },
};

const CLUSTER_DOMAIN: SettingSpec<string> = {
  name: "CLUSTER_DOMAIN",
  default: "cluster.local",
  emptyMeansDefault: false,
  description: "DNS domain of Services inside the cluster.",
  parse(value) {
    const labels = value.split(".");
    if (value.length > 253 || !labels.every((l) => DNS_LABEL.test(l) && l.length <= 63)) {
      throw new Invalid("must be a lower-case DNS name such as cluster.local");
    }
    return value;
  },
};

const METAL_BGP_ASN: SettingSpec<number> = {
  name: "METAL_BGP_ASN",
  default: "65000",
  emptyMeansDefault: false,
  description: "The project's local BGP ASN (Metal's customer ASN, 65000 unless the project was set up otherwise). Must not be the routers' 65530.",
  parse(value) {
    const asn = wholeNumber(value, 1, 4294967294);
    if (asn === 65530) throw new Invalid("65530 is the Metal routers' own ASN; the project needs a different one (default 65000)");
    const private16 = asn >= 64512 && asn <= 65534;
    const private32 = asn >= 4200000000 && asn <= 4294967294;
    if (!private16 && !private32) throw new Invalid("local BGP uses a private ASN: 64512-65534 or 4200000000-4294967294");
    // Calico v3.32's BGPConfiguration CRD declares asNumber as int32 (reference/schemas/calico).
    if (private32) throw new Invalid("Calico stores the AS number as a 32-bit signed integer (BGPConfiguration CRD, format int32): use a 16-bit private ASN, 64512-65534");
    return asn;
  },
};

const METAL_BGP_MD5_ENABLED: SettingSpec<boolean> = {
  name: "METAL_BGP_MD5_ENABLED",
  default: "false",
  emptyMeansDefault: false,
  description:
    "true if the project's local BGP uses an MD5 password (NODE_TARGET=matchbox: your routers' sessions, whose router_configs output then carries it and is sensitive). The password itself is not a setting: pass it as TF_VAR_metal_bgp_md5_password (a sensitive Terraform variable).",
  parse: (value) => oneOf(["true", "false"])(value) === "true",
};

const METAL_MANAGE_PROJECT_BGP: SettingSpec<boolean> = {
  name: "METAL_MANAGE_PROJECT_BGP",
  default: "false",
  emptyMeansDefault: false,
  description:
    "true: the app adopts the existing project METAL_PROJECT_ID (a Terraform import block; Terraform >= 1.5) and enables its local BGP with METAL_BGP_ASN and the password if METAL_BGP_MD5_ENABLED. The project is never deleted, and its BGP config cannot be removed afterwards. false: local BGP must already be enabled; the plan checks it (docs/bgp-fabric.md).",
  parse: (value) => oneOf(["true", "false"], " (true lets the app enable the project's local BGP; false only checks it)")(value) === "true",
};

const LOCAL_SERVICE_ROUTES: SettingSpec<number> = {
  name: "LOCAL_SERVICE_ROUTES",
  default: "4",
  emptyMeansDefault: false,
  description:
    "How many externalTrafficPolicy: Local Service addresses exist, so the most /128s one node may announce: 0, 1, 2 or 4. They form one Calico pool (a CIDR); Metal accepts 10 prefixes per server and pod blocks and the two Service ranges take 4 (docs/bgp-fabric.md).",
  parse(value) {
    if (!/^\d+$/.test(value)) throw new Invalid("must be a whole number");
    try {
      checkPrefixBudget({ blockPrefixLength: POD_BLOCK_PREFIX_LENGTH, localServiceRoutes: Number(value) });
    } catch (err) {
      if (err instanceof PrefixBudgetError) throw new Invalid(err.message.replace(/^LOCAL_SERVICE_ROUTES=\d+ is /, ""));
      throw err;
    }
    return Number(value);
  },
};

const METAL_PROJECT_SSH_KEY_IDS: SettingSpec<string[]> = {
  name: "METAL_PROJECT_SSH_KEY_IDS",
  default: "",
  emptyMeansDefault: true,
  description: "Comma-separated project SSH key UUIDs for the `core` user. Empty or unset: Metal installs the project's keys. SSH is closed by the host policy unless ADMIN_ALLOWED_PREFIXES opens it.",
  parse(value) {
    const ids = list(value);
    const bad = ids.filter((id) => !UUID.test(id));
    if (bad.length > 0) throw new Invalid(`${bad.join(", ")} ${bad.length === 1 ? "is not a key UUID" : "are not key UUIDs"}`);
    return ids;
  },
};

/**
 * A comma-separated list of IPv6 prefixes that a host policy admits as sources. Any
 * length from /0 to /128 is a valid source range here (unlike the cluster block); host
 * bits must be clear so the list means what it says. IPv4 is refused: the node ports
 * these lists open are reached over IPv6 only (docs/security.md).
 */
function ipv6Prefixes(value: string): Ipv6Cidr[] {
  const prefixes: Ipv6Cidr[] = [];
  const problems: string[] = [];
  for (const item of list(value)) {
    try {
      prefixes.push(Ipv6Cidr.parse(item));
    } catch (err) {
      if (!(err instanceof AddressPlanError)) throw err;
      problems.push(err.message);
    }
  }
  if (problems.length > 0) {
    throw new Invalid(`${problems.join("; ")}; use comma-separated IPv6 prefixes (address/length, /0 to /128, no host bits), e.g. 2001:db8:1234::/48,2001:db8:5678::1/128`);
  }
  return prefixes;
}

/**
 * The shortest source prefix a list may hold without an acknowledgement. Anything
 * shorter opens the port to the whole Internet (::/0) or a large part of it: IANA
 * allocates /12s to the regional registries, which allocate /32s or /29s to ISPs, and a
 * site gets a /48 or /56. No operator's own network needs a prefix shorter than /16.
 */
export const MIN_SOURCE_PREFIX_LENGTH = 16;

const API_ALLOWED_PREFIXES: SettingSpec<Ipv6Cidr[]> = {
  name: "API_ALLOWED_PREFIXES",
  default: "",
  emptyMeansDefault: true,
  description:
    `Comma-separated IPv6 prefixes allowed to reach the Kubernetes API server from outside the cluster (e.g. your office or CI). Empty or unset: only nodes and pods reach it (docs/security.md). ::/0 or a prefix shorter than /${MIN_SOURCE_PREFIX_LENGTH} also needs API_ALLOWED_INTERNET_WIDE=true.`,
  parse: ipv6Prefixes,
};

const ADMIN_ALLOWED_PREFIXES: SettingSpec<Ipv6Cidr[]> = {
  name: "ADMIN_ALLOWED_PREFIXES",
  default: "",
  emptyMeansDefault: true,
  description:
    `Comma-separated IPv6 prefixes allowed to reach SSH (port 22) on every node, also through Calico's failsafe rules. Empty or unset: SSH is closed; use Metal's out-of-band console (docs/security.md). ::/0 or a prefix shorter than /${MIN_SOURCE_PREFIX_LENGTH} also needs ADMIN_ALLOWED_INTERNET_WIDE=true.`,
  parse: ipv6Prefixes,
};

/** A source-prefix list and the acknowledgement it needs before it may open its port Internet-wide. */
interface SourcePrefixList {
  readonly prefixes: SettingSpec<Ipv6Cidr[]>;
  /** What the list opens, for descriptions and messages. */
  readonly opens: string;
  readonly internetWide: SettingSpec<boolean>;
}

function sourcePrefixList(prefixes: SettingSpec<Ipv6Cidr[]>, acknowledgement: string, opens: string): SourcePrefixList {
  const internetWide: SettingSpec<boolean> = {
    name: acknowledgement,
    default: "false",
    emptyMeansDefault: false,
    description: `true acknowledges that ${prefixes.name} holds ::/0 or a prefix shorter than /${MIN_SOURCE_PREFIX_LENGTH}, which opens ${opens} to the whole Internet or a large part of it. It opens nothing by itself. false: such a prefix stops synth.`,
    parse: (value) => oneOf(["true", "false"])(value) === "true",
  };
  return { prefixes, opens, internetWide };
}

const API_SOURCES = sourcePrefixList(API_ALLOWED_PREFIXES, "API_ALLOWED_INTERNET_WIDE", "the Kubernetes API server");
const ADMIN_SOURCES = sourcePrefixList(ADMIN_ALLOWED_PREFIXES, "ADMIN_ALLOWED_INTERNET_WIDE", "SSH (port 22) on every node");

const NAT64_ENABLED: SettingSpec<boolean> = {
  name: "NAT64_ENABLED",
  default: "true",
  emptyMeansDefault: false,
  description:
    "true: every node translates its own pods' traffic to 64:ff9b::/96 into IPv4 from its public IPv4 (NAT64, tayga), and cluster DNS answers names that have only an A record with a 64:ff9b:: address (DNS64), so IPv6-only pods reach IPv4-only hosts such as github.com. The metadata service and private IPv4 ranges stay unreachable. false: pure IPv6, no translator on the nodes (docs/nat64.md).",
  parse: (value) => oneOf(["true", "false"], " (false turns NAT64 and DNS64 off: pods reach IPv6 destinations only)")(value) === "true",
};

/**
 * The characters a URL may hold as written (RFC 3986 section 2), so none of `$`, `{`, `}`,
 * `"`, `\` or a space: the URL goes as a literal into Terraform strings (the user data
 * and the plan-time check of constructs/nat64-package-source.ts).
 */
const URL_CHARACTERS = /^[A-Za-z0-9._~:/?#[\]@!&'()*+,;=%-]+$/;

/**
 * The default: Debian's path on a host of the reserved .example domain (RFC 2606), so
 * the example synthesizes and no deploy downloads from it (the plan refuses it).
 */
export const PLACEHOLDER_TAYGA_PACKAGE_URL = `https://debian-mirror.example/debian/${TAYGA.poolPath}`;

const NAT64_TAYGA_PACKAGE_URL: SettingSpec<string> = {
  name: "NAT64_TAYGA_PACKAGE_URL",
  default: PLACEHOLDER_TAYGA_PACKAGE_URL,
  emptyMeansDefault: false,
  description:
    `Where every node downloads tayga for NAT64: the https URL of Debian's ${TAYGA.packageFile} on a Debian mirror you trust (${TAYGA.poolPath} under the mirror's root). Ignition checks the SHA-256 pinned in lib/versions.ts, so no other file is installed. The default is a placeholder in the reserved .example domain: it synthesizes, and with NAT64_ENABLED=true a deploy stops at plan time until you set a real mirror (docs/nat64.md). Unused when NAT64_ENABLED=false.`,
  parse(value) {
    const valid = `give the https URL of Debian's ${TAYGA.packageFile} on a mirror you trust, e.g. https://<mirror>/debian/${TAYGA.poolPath}`;
    if (!URL_CHARACTERS.test(value)) throw new Invalid(`a URL holds only the characters of RFC 3986 (no spaces, double quotes, $, {, } or backslashes; percent-encode them); ${valid}`);
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      throw new Invalid(`it is not a URL; ${valid}`);
    }
    if (url.protocol !== "https:") throw new Invalid(`${url.protocol.slice(0, -1)} is not https; ${valid}`);
    if (url.username !== "" || url.password !== "") {
      throw new Invalid(`it holds a user name or password, which would be readable on every node (user data is served by Metal's metadata service); ${valid} that needs none`);
    }
    const file = url.pathname.split("/").pop();
    if (file !== TAYGA.packageFile) {
      throw new Invalid(`its path ends with "${file}", not Debian's file name of the pinned package, ${TAYGA.packageFile} (lib/versions.ts; Ignition accepts only that file); ${valid}`);
    }
    // WHATWG form: a lower-case scheme and host, as the plan-time check expects.
    return url.href;
  },
};

/** resolv.conf honours at most 3 nameservers (glibc MAXNS); the kubelet drops the rest with a warning. */
export const MAX_DNS_RESOLVERS = 3;

const DNS_UPSTREAM_RESOLVERS: SettingSpec<string[]> = {
  name: "DNS_UPSTREAM_RESOLVERS",
  default: DEFAULT_IPV6_RESOLVERS.join(","),
  emptyMeansDefault: false,
  description:
    `Comma-separated IPv6 addresses of the recursive resolvers cluster DNS (CoreDNS) forwards to, also the kubelet's resolv.conf; 1 to ${MAX_DNS_RESOLVERS}. IPv6 because pods have no IPv4 (Metal's own resolvers are IPv4-only). The default is Google Public DNS and Cloudflare.`,
  parse(value) {
    const items = list(value);
    const problems: string[] = [];
    for (const item of items) {
      if (!Address6.isValid(item) || item.includes("/") || item.includes("%") || item.includes(".")) {
        problems.push(`${item} is not an IPv6 address (IPv4 resolvers are unreachable from IPv6-only pods)`);
        continue;
      }
      const address = new Address6(item);
      if (address.isInSubnet(new Address6("64:ff9b::/96"))) problems.push(`${item} is a NAT64 address: list the resolver's own IPv6 address, DNS must not depend on the translator`);
      else if (!address.isInSubnet(new Address6("2000::/3"))) problems.push(`${item} is not a global unicast address (2000::/3): pods reach resolvers over the Internet`);
    }
    if (items.length === 0 || items.length > MAX_DNS_RESOLVERS) problems.push(`give 1 to ${MAX_DNS_RESOLVERS} addresses (resolv.conf uses at most ${MAX_DNS_RESOLVERS})`);
    if (problems.length > 0) throw new Invalid(`${problems.join("; ")}; e.g. 2001:4860:4860::8888,2606:4700:4700::1111`);
    return items.map((item) => new Address6(item).correctForm());
  },
};

const TF_CLOUD_ORGANIZATION: SettingSpec<string> = {
  name: "TF_CLOUD_ORGANIZATION",
  default: "",
  emptyMeansDefault: true,
  description:
    "Terraform Cloud organization. Set it to keep state in Terraform Cloud (one workspace per stack). Empty or unset: state is local.",
  parse(value) {
    if (value !== "" && !/^[A-Za-z0-9_-]+$/.test(value)) throw new Invalid("must be a Terraform Cloud organization name (letters, digits, - and _)");
    return value;
  },
};

const TF_WORKSPACE_PREFIX: SettingSpec<string> = {
  name: "TF_WORKSPACE_PREFIX",
  default: "",
  emptyMeansDefault: true,
  description:
    "Prefix of the Terraform Cloud workspace names; each stack's workspace is <prefix><stack>. Empty or unset: the workspace is named after the stack. Needs TF_CLOUD_ORGANIZATION.",
  parse(value) {
    if (!/^[A-Za-z0-9_-]*$/.test(value)) throw new Invalid("may only hold letters, digits, - and _");
    return value;
  },
};

const TF_CLOUD_HOSTNAME: SettingSpec<string> = {
  name: "TF_CLOUD_HOSTNAME",
  default: "app.terraform.io",
  emptyMeansDefault: false,
  description: "Terraform Cloud or Enterprise hostname. Anything but the default needs TF_CLOUD_ORGANIZATION.",
  parse(value) {
    if (!/^[a-z0-9.-]+$/.test(value)) throw new Invalid("must be a hostname such as app.terraform.io");
    return value;
  },
};

const NODE_TARGET: SettingSpec<NodeTarget> = {
  name: "NODE_TARGET",
  default: "metal",
  emptyMeansDefault: false,
  description:
    "Where the nodes run. metal: Equinix Metal devices (the METAL_ settings). matchbox: your own bare-metal machines, listed in MATCHBOX_INVENTORY and PXE-booted through Matchbox with the same Ignition (README \"Your own bare metal\"); CONTROL_PLANE_COUNT and WORKER_COUNT then come from the inventory.",
  parse: oneOf<NodeTarget>(["metal", "matchbox"]),
};

const MATCHBOX_INVENTORY: SettingSpec<string> = {
  name: "MATCHBOX_INVENTORY",
  default: "",
  emptyMeansDefault: true,
  description:
    "Path of the JSON inventory of your machines (name, role, mac, address, gateway, privateIpv4, neighbors, optional installDisk) for NODE_TARGET=matchbox; the README has a worked example. Empty or unset: no inventory, which only NODE_TARGET=metal (the default) accepts.",
  parse: (value) => value,
};

const MATCHBOX_HTTP_ENDPOINT: SettingSpec<string> = {
  name: "MATCHBOX_HTTP_ENDPOINT",
  default: "http://matchbox.example:8080",
  emptyMeansDefault: false,
  description:
    "URL at which your machines reach Matchbox's HTTP endpoint (iPXE scripts, Ignition, metadata), without a trailing slash. The default is a placeholder in the reserved .example domain. Used with NODE_TARGET=matchbox.",
  parse(value) {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      throw new Invalid("it is not a URL; give Matchbox's HTTP endpoint, e.g. http://matchbox.example:8080");
    }
    if (!["http:", "https:"].includes(url.protocol) || url.pathname !== "/" || url.search !== "" || url.hash !== "" || value.endsWith("/") || !URL_CHARACTERS.test(value)) {
      throw new Invalid("give only the scheme (http or https), host and port of Matchbox's HTTP endpoint, e.g. http://matchbox.example:8080");
    }
    return value;
  },
};

const MATCHBOX_RPC_ENDPOINT: SettingSpec<string> = {
  name: "MATCHBOX_RPC_ENDPOINT",
  default: "matchbox.example:8081",
  emptyMeansDefault: false,
  description:
    "host:port of Matchbox's gRPC API, which Terraform applies profiles and groups through (TLS with a client certificate: TF_VAR_matchbox_client_cert, TF_VAR_matchbox_client_key, TF_VAR_matchbox_ca). Used with NODE_TARGET=matchbox.",
  parse(value) {
    if (!/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(value)) throw new Invalid("give host:port (an IPv6 address in brackets), e.g. matchbox.example:8081");
    return value;
  },
};

const CONFIG_STACK_RUNNER_PREFIX: SettingSpec<Ipv6Cidr | undefined> = {
  name: "CONFIG_STACK_RUNNER_PREFIX",
  default: "",
  emptyMeansDefault: true,
  description:
    "The IPv6 prefix (or address) the configuration stack's Terraform runs from: your machine, a CI runner, a Terraform Cloud agent. Set, the app adds the stack `<CLUSTER_NAME>-config`, which keeps the in-cluster objects the settings control (Calico BGP, pools, host policies, DNS, admission) converged after first boot; an API_ALLOWED_PREFIXES entry (or the cluster's pod or node range) must admit it. Empty or unset: no configuration stack; first boot alone applies those objects (docs/operations.md).",
  parse(value) {
    const items = list(value);
    if (items.length === 0) return undefined;
    const valid = "give one IPv6 prefix or address, e.g. 2001:db8:1234:5::/64";
    if (items.length > 1) throw new Invalid(`${valid} (one runner; a prefix can cover several)`);
    if (!items[0].includes("/") && !Address6.isValid(items[0])) throw new Invalid(`"${items[0]}" is not an IPv6 address; ${valid}`);
    try {
      return Ipv6Cidr.parse(items[0].includes("/") ? items[0] : `${items[0]}/128`);
    } catch (err) {
      if (err instanceof AddressPlanError) throw new Invalid(`${err.message}; ${valid}`);
      throw err;
    }
  },
};

const CONFIG_STACK_ADOPT: SettingSpec<boolean> = {
  name: "CONFIG_STACK_ADOPT",
  default: "true",
  emptyMeansDefault: false,
  description:
    "true: the configuration stack's plan imports the objects first boot applied (Terraform import blocks; no-ops once they are in its state), since the kubernetes provider will not create an object that exists. Set false after its first apply, so that an object a later setting adds (LOCAL_SERVICE_ROUTES from 0, a new router) is created instead of imported.",
  parse: (value) => oneOf(["true", "false"])(value) === "true",
};

/** The wait without Terraform Cloud (CONFIG_STACK_WAIT_MINUTES unset). */
export const DEFAULT_CONFIG_STACK_WAIT_MINUTES = 30;

const CONFIG_STACK_WAIT_MINUTES: SettingSpec<number | undefined> = {
  name: "CONFIG_STACK_WAIT_MINUTES",
  default: "auto",
  emptyMeansDefault: false,
  description:
    `With a configuration stack: how long the cluster stack's first apply waits, polling the API with curl from where its Terraform runs, until first boot has applied every object the configuration stack imports, so one \`npm run deploy\` creates the cluster and converges its configuration. 0: no wait; deploy \`<CLUSTER_NAME>-config\` again once the cluster is up. auto: ${DEFAULT_CONFIG_STACK_WAIT_MINUTES}, or 0 with TF_CLOUD_ORGANIZATION (Terraform Cloud's hosted workers neither reach the API nor promise curl; set it when the cluster's workspace runs locally or on an agent). docs/operations.md, "Order".`,
  parse: (value) => {
    if (value === "auto") return undefined;
    if (!/^\d+$/.test(value)) throw new Invalid("must be auto or a whole number of minutes from 0 to 240");
    return wholeNumber(value, 0, 240);
  },
};

/**
 * Why no allowed source admits the runner, or undefined. The API server answers the
 * cluster's pods and nodes and API_ALLOWED_PREFIXES (lib/policies.ts forwardPolicy).
 */
function runnerProblem(runner: Ipv6Cidr | undefined, plan: AddressPlan | undefined, allowed: readonly Ipv6Cidr[] | undefined): string | undefined {
  if (!runner || !plan || !allowed) return undefined;
  const sources = [...allowed, plan.podCidr, plan.nodeRange];
  if (sources.some((p) => p.contains(runner))) return undefined;
  const listed = allowed.length > 0 ? `API_ALLOWED_PREFIXES=${allowed.join(",")}` : "API_ALLOWED_PREFIXES is empty";
  return (
    `CONFIG_STACK_RUNNER_PREFIX=${runner} is not valid: no allowed source admits it (${listed}; the cluster's pods are ${plan.podCidr}, its nodes ${plan.nodeRange}), ` +
    `so the configuration stack's Terraform could not reach the API server; add ${runner} or a prefix containing it to API_ALLOWED_PREFIXES, ` +
    `or run the stack from inside the cluster (docs/operations.md, "The configuration stack")`
  );
}

/** Every setting, in the order the README and .envrc.local.example list them. */
export const SETTINGS: readonly SettingDoc[] = [
  CLUSTER_NAME,
  METAL_PROJECT_ID,
  METAL_METRO,
  CLUSTER_IPV6_BLOCK,
  CONTROL_PLANE_COUNT,
  WORKER_COUNT,
  NODE_PLAN,
  BILLING_CYCLE,
  FLATCAR_CHANNEL,
  KUBERNETES_VERSION,
  CLUSTER_DOMAIN,
  METAL_BGP_ASN,
  METAL_BGP_MD5_ENABLED,
  METAL_MANAGE_PROJECT_BGP,
  LOCAL_SERVICE_ROUTES,
  METAL_PROJECT_SSH_KEY_IDS,
  API_ALLOWED_PREFIXES,
  API_SOURCES.internetWide,
  ADMIN_ALLOWED_PREFIXES,
  ADMIN_SOURCES.internetWide,
  NAT64_ENABLED,
  NAT64_TAYGA_PACKAGE_URL,
  DNS_UPSTREAM_RESOLVERS,
  TF_CLOUD_ORGANIZATION,
  TF_WORKSPACE_PREFIX,
  TF_CLOUD_HOSTNAME,
  NODE_TARGET,
  MATCHBOX_INVENTORY,
  MATCHBOX_HTTP_ENDPOINT,
  MATCHBOX_RPC_ENDPOINT,
  CONFIG_STACK_RUNNER_PREFIX,
  CONFIG_STACK_ADOPT,
  CONFIG_STACK_WAIT_MINUTES,
];

/**
 * Name prefixes the settings use, so that an unknown variable starting with one of them
 * (METAL_PLAN, CLUSTER_IPV6_PREFIX) is taken for a mistake even when no setting is close
 * in spelling. Chosen so that common variables of other tools never start with one:
 * NODE_ (NODE_PLAN's and NODE_TARGET's) is not here because Node.js reads NODE_OPTIONS, NODE_PATH and
 * more; TF_ is not here because Terraform reads dozens of TF_ variables. The other tools'
 * variables that do start with one of these are in NOT_SETTINGS.
 */
export const SETTING_PREFIXES: readonly string[] = [
  "METAL_",
  "CLUSTER_",
  "CONTROL_PLANE_",
  "WORKER_",
  "FLATCAR_",
  "KUBERNETES_",
  "LOCAL_SERVICE_",
  "API_ALLOWED_",
  "ADMIN_ALLOWED_",
  "NAT64_",
  "DNS_UPSTREAM_",
  "TF_CLOUD_",
  "TF_WORKSPACE_",
  "MATCHBOX_",
  "CONFIG_STACK_",
];

/** A variable of another tool that an operator's shell may hold next to the settings. */
export interface NotSetting {
  /** The exact name, or a prefix written with a trailing `*` (TF_VAR_*). */
  readonly name: string;
  /** Who reads it: why it is legitimate. */
  readonly readBy: string;
}

/**
 * Variables that are not settings but start like one or are read next to them: the typo
 * check never reports them, whatever their spelling distance to a setting. Add a tool's
 * variable here when it trips the check (the check's message says so).
 */
export const NOT_SETTINGS: readonly NotSetting[] = [
  { name: "METAL_AUTH_TOKEN", readBy: "the equinix/metal provider and the metal CLI: the API token (a secret)" },
  { name: "METAL_ORGANIZATION_ID", readBy: "the metal CLI (`metal env` exports it)" },
  { name: "METAL_CONFIG", readBy: "the metal CLI: its configuration file" },
  // Terraform CLI ("Environment Variables" in the Terraform CLI documentation).
  { name: "TF_VAR_*", readBy: "Terraform: input variables (TF_VAR_metal_bgp_md5_password is a secret)" },
  { name: "TF_TOKEN_*", readBy: "Terraform: API tokens per host (secrets)" },
  { name: "TF_CLOUD_PROJECT", readBy: "Terraform: the cloud block's project" },
  { name: "TF_WORKSPACE", readBy: "Terraform: the selected workspace" },
  { name: "TF_CLI_CONFIG_FILE", readBy: "Terraform: the CLI configuration file" },
  { name: "TF_CLI_ARGS*", readBy: "Terraform: extra command-line arguments" },
  { name: "TF_LOG*", readBy: "Terraform: logging (TF_LOG, TF_LOG_PATH, TF_LOG_CORE, TF_LOG_PROVIDER)" },
  { name: "TF_INPUT", readBy: "Terraform: interactive prompts" },
  { name: "TF_IN_AUTOMATION", readBy: "Terraform: shorter output in automation" },
  { name: "TF_DATA_DIR", readBy: "Terraform: the working directory's data" },
  { name: "TF_PLUGIN_CACHE_*", readBy: "Terraform: the provider plugin cache" },
  { name: "TF_REGISTRY_*", readBy: "Terraform: registry timeouts and retries" },
  { name: "TF_IGNORE", readBy: "Terraform: .terraformignore tracing" },
  { name: "TF_STATE_PERSIST_INTERVAL", readBy: "Terraform: state snapshots during apply" },
  { name: "TF_APPEND_USER_AGENT", readBy: "Terraform: the User-Agent header" },
  // Matchbox reads its own flags from MATCHBOX_<FLAG> (cmd/matchbox/main.go), e.g. where a server runs beside the app.
  { name: "MATCHBOX_ADDRESS", readBy: "the Matchbox server: its HTTP listen address (-address)" },
  { name: "MATCHBOX_RPC_ADDRESS", readBy: "the Matchbox server: its gRPC listen address (-rpc-address)" },
  { name: "MATCHBOX_DATA_PATH", readBy: "the Matchbox server: its data directory (-data-path)" },
  { name: "MATCHBOX_ASSETS_PATH", readBy: "the Matchbox server: its assets directory (-assets-path)" },
  { name: "MATCHBOX_LOG_LEVEL", readBy: "the Matchbox server: its log level (-log-level)" },
  { name: "MATCHBOX_CERT_FILE", readBy: "the Matchbox server: its gRPC TLS certificate (-cert-file)" },
  { name: "MATCHBOX_KEY_FILE", readBy: "the Matchbox server: its gRPC TLS key (-key-file)" },
  { name: "MATCHBOX_CA_FILE", readBy: "the Matchbox server: the CA of its gRPC clients (-ca-file)" },
  { name: "MATCHBOX_KEY_RING_PATH", readBy: "the Matchbox server: its signing keyring (-key-ring-path)" },
  { name: "MATCHBOX_WEB_*", readBy: "the Matchbox server: HTTPS for its HTTP endpoint (-web-ssl, -web-cert-file, -web-key-file)" },
  { name: "CDKTF_*", readBy: "the cdktf CLI and library (CDKTF_OUTDIR, CDKTF_LOG_LEVEL, ...)" },
  { name: "JSII_*", readBy: "the jsii runtime under cdktf" },
  { name: "CHECKPOINT_DISABLE", readBy: "HashiCorp tools: no update checks (.envrc sets it)" },
  { name: "KUBECONFIG", readBy: "kubectl and other Kubernetes clients" },
  // Every pod's environment holds the `kubernetes` Service's links (CI running in Kubernetes).
  { name: "KUBERNETES_SERVICE_*", readBy: "Kubernetes: the API Service's address in every pod" },
  { name: "KUBERNETES_PORT*", readBy: "Kubernetes: the API Service's address in every pod (Docker link style)" },
];

function isNotSetting(name: string): boolean {
  return NOT_SETTINGS.some((n) => (n.name.endsWith("*") ? name.startsWith(n.name.slice(0, -1)) : name === n.name));
}

/**
 * How far a variable's name may be from a setting's and still be taken for a typo of it:
 * one edit for short names (NODE_PATH, two edits from NODE_PLAN, is Node's), about one
 * in five characters for longer ones, at most three.
 */
function typoDistance(settingName: string): number {
  return Math.min(3, Math.max(1, Math.floor(settingName.length / 5)));
}

/**
 * How good a suggestion `known` is for the misspelled `upper` (lower is better): the edit
 * distance, but 1 for a name cut short (TF_CLOUD_ORG) or one whose words `known` all has
 * (CLUSTER_BLOCK, METAL_ASN); on a tie, a name with the same setting prefix wins, then
 * the smaller edit distance, then the first listed.
 */
function suggestionRank(upper: string, known: string, prefix: string | undefined): number {
  const edits = distance(upper, known);
  const words = new Set(known.split("_"));
  const partOf = known.startsWith(upper) || upper.split("_").every((w) => words.has(w));
  return (Math.min(edits, partOf ? 1 : edits) * 2 + (prefix !== undefined && known.startsWith(prefix) ? 0 : 1)) * 1000 + edits;
}

/** A variable in the environment that looks like a setting but is none. */
export interface MisspelledSetting {
  /** The variable's name (never its value: it may be a secret). */
  readonly name: string;
  /** The known name closest to it: a setting, or a NOT_SETTINGS name with its prefix. */
  readonly suggestion: string;
  /** The setting prefix it starts with, when that (not its spelling) gave it away. */
  readonly prefix?: string;
}

/**
 * The variables of `env` that look like misspelled settings: close in spelling to a
 * setting (case aside), or starting with a SETTING_PREFIXES prefix. Settings themselves
 * and NOT_SETTINGS are never reported. Sorted by name.
 */
export function findMisspelledSettings(env: Env): MisspelledSetting[] {
  const settingNames = SETTINGS.map((s) => s.name);
  const knownNames = [...settingNames, ...NOT_SETTINGS.map((n) => n.name).filter((n) => !n.endsWith("*"))];
  const found: MisspelledSetting[] = [];
  for (const name of Object.keys(env).sort()) {
    if (env[name] === undefined || settingNames.includes(name) || isNotSetting(name)) continue;
    const upper = name.toUpperCase();
    const closeToSetting = settingNames.some((s) => distance(upper, s) <= typoDistance(s));
    const prefix = SETTING_PREFIXES.find((p) => name.startsWith(p));
    if (!closeToSetting && prefix === undefined) continue;
    const suggestion = knownNames.reduce((best, known) => (suggestionRank(upper, known, prefix) < suggestionRank(upper, best, prefix) ? known : best));
    found.push(closeToSetting ? { name, suggestion } : { name, suggestion, prefix });
  }
  return found;
}

/** The problem a misspelled setting is reported as: its name and the suggestion, never its value. */
function misspellingProblem(m: MisspelledSetting): string {
  const family = SETTINGS.map((s) => s.name).filter((n) => m.prefix !== undefined && n.startsWith(m.prefix));
  const why = m.prefix === undefined ? "" : `, though it starts like the ${m.prefix} settings (${family.join(", ")})`;
  return `${m.name} is not a setting${why}: did you mean ${m.suggestion}? Rename or unset the variable; if another tool reads it, add it to NOT_SETTINGS in lib/settings.ts.`;
}

/** The problem when `list` holds Internet-wide prefixes without its acknowledgement, else undefined. */
function internetWideProblem(list: SourcePrefixList, value: string, prefixes: readonly Ipv6Cidr[] | undefined, acknowledged: boolean | undefined): string | undefined {
  const wide = (prefixes ?? []).filter((p) => p.length < MIN_SOURCE_PREFIX_LENGTH);
  if (wide.length === 0 || acknowledged === true) return undefined;
  return (
    `${list.prefixes.name}=${value} is not valid: ${andList(wide.map(String))} ${wide.length === 1 ? "opens" : "open"} ${list.opens} to the whole Internet or a large part of it ` +
    `(a prefix shorter than /${MIN_SOURCE_PREFIX_LENGTH} is far wider than any one organization's network). ` +
    `If that is what you want, acknowledge it with ${list.internetWide.name}=true; otherwise list only your own prefixes, e.g. 2001:db8:1234::/48`
  );
}

/** A Flatcar channel whose containerd the Kubernetes release no longer supports. */
function containerRuntimeProblem(channel: FlatcarChannel | undefined, kubernetesVersion: string | undefined): string | undefined {
  if (channel === undefined || kubernetesVersion === undefined) return undefined;
  const minor = Number(kubernetesVersion.split(".")[1]);
  if (FLATCAR_CONTAINERD_MAJOR[channel] >= 2 || minor <= LAST_KUBERNETES_MINOR_WITH_CONTAINERD_1) return undefined;
  return (
    `FLATCAR_CHANNEL=${channel} is not valid with KUBERNETES_VERSION=${kubernetesVersion}: Flatcar ${channel} ships containerd 1.x, ` +
    `and Kubernetes 1.${LAST_KUBERNETES_MINOR_WITH_CONTAINERD_1} was the last release to support it; use FLATCAR_CHANNEL=stable, beta or alpha (containerd 2)`
  );
}

/**
 * Reads and validates every setting from `env`. Throws SettingsError listing all
 * problems: each variable that looks like a misspelled setting (`NAME is not a setting:
 * did you mean ...`, never with its value), then each bad value as
 * `NAME=value is not valid: <what is valid>`.
 */
export function loadSettings(env: Env): ClusterSettings {
  const problems: string[] = findMisspelledSettings(env).map(misspellingProblem);
  /** The value as given, trimmed; undefined when the variable is not set. */
  const given = (spec: SettingDoc) => env[spec.name]?.trim();
  function read<T>(spec: SettingSpec<T>): T {
    const value = given(spec);
    if (value === "" && !spec.emptyMeansDefault) {
      problems.push(`${spec.name}= is not valid: the variable is set but empty; set a value, or unset it to use the default ${spec.default}`);
      return undefined as unknown as T;
    }
    const effective = value === undefined || value === "" ? spec.default : value;
    try {
      return spec.parse(effective);
    } catch (err) {
      if (!(err instanceof Invalid)) throw err;
      problems.push(`${spec.name}=${effective} is not valid: ${err.message}`);
      return undefined as unknown as T;
    }
  }
  const settings = {
    clusterName: read(CLUSTER_NAME),
    metalProjectId: read(METAL_PROJECT_ID),
    metro: read(METAL_METRO),
    addressPlan: read(CLUSTER_IPV6_BLOCK),
    controlPlaneCount: read(CONTROL_PLANE_COUNT),
    workerCount: read(WORKER_COUNT),
    nodePlan: read(NODE_PLAN),
    billingCycle: read(BILLING_CYCLE),
    flatcarChannel: read(FLATCAR_CHANNEL),
    kubernetesVersion: read(KUBERNETES_VERSION),
    clusterDomain: read(CLUSTER_DOMAIN),
    bgpAsn: read(METAL_BGP_ASN),
    bgpMd5Enabled: read(METAL_BGP_MD5_ENABLED),
    manageProjectBgp: read(METAL_MANAGE_PROJECT_BGP),
    localServiceRoutes: read(LOCAL_SERVICE_ROUTES),
    projectSshKeyIds: read(METAL_PROJECT_SSH_KEY_IDS),
    apiAllowedPrefixes: read(API_ALLOWED_PREFIXES),
    adminAllowedPrefixes: read(ADMIN_ALLOWED_PREFIXES),
    nat64Enabled: read(NAT64_ENABLED),
    taygaPackageUrl: read(NAT64_TAYGA_PACKAGE_URL),
    dnsUpstreamResolvers: read(DNS_UPSTREAM_RESOLVERS),
  };
  const runtimeProblem = containerRuntimeProblem(settings.flatcarChannel, settings.kubernetesVersion);
  if (runtimeProblem !== undefined) problems.push(runtimeProblem);
  for (const [list, prefixes] of [[API_SOURCES, settings.apiAllowedPrefixes], [ADMIN_SOURCES, settings.adminAllowedPrefixes]] as const) {
    const problem = internetWideProblem(list, given(list.prefixes) ?? "", prefixes, read(list.internetWide));
    if (problem !== undefined) problems.push(problem);
  }
  const organization = read(TF_CLOUD_ORGANIZATION);
  const workspacePrefix = read(TF_WORKSPACE_PREFIX);
  const hostname = read(TF_CLOUD_HOSTNAME);
  // The other Terraform Cloud settings only shape the `cloud` block, which needs the organization.
  if (!given(TF_CLOUD_ORGANIZATION)) {
    const missing = "needs TF_CLOUD_ORGANIZATION, which is not set";
    if (workspacePrefix) {
      problems.push(`TF_WORKSPACE_PREFIX=${workspacePrefix} is not valid: it names Terraform Cloud workspaces and ${missing}; set TF_CLOUD_ORGANIZATION to keep state in Terraform Cloud, or unset TF_WORKSPACE_PREFIX to keep it local`);
    }
    if (hostname !== undefined && hostname !== TF_CLOUD_HOSTNAME.default) {
      problems.push(`TF_CLOUD_HOSTNAME=${hostname} is not valid: it selects a Terraform Enterprise host and ${missing}; set TF_CLOUD_ORGANIZATION to keep state there, or unset TF_CLOUD_HOSTNAME to keep it local`);
    }
  }
  const runnerPrefix = read(CONFIG_STACK_RUNNER_PREFIX);
  const adoptFirstBoot = read(CONFIG_STACK_ADOPT);
  const waitMinutes = read(CONFIG_STACK_WAIT_MINUTES);
  const runner = runnerProblem(runnerPrefix, settings.addressPlan, settings.apiAllowedPrefixes);
  if (runner !== undefined) problems.push(runner);
  const target = read(NODE_TARGET);
  // Read whatever the target, so a mistake in them is reported even before it is used.
  const endpoints = { inventoryPath: read(MATCHBOX_INVENTORY), httpEndpoint: read(MATCHBOX_HTTP_ENDPOINT), rpcEndpoint: read(MATCHBOX_RPC_ENDPOINT) };
  const matchbox = target === "matchbox" ? readMatchbox(endpoints, given, settings, problems) : undefined;
  if (problems.length > 0) throw new SettingsError(problems);
  const machines = matchbox?.inventory.machines;
  return {
    ...settings,
    ...(machines
      ? { controlPlaneCount: machines.filter((m) => m.role === "control-plane").length as ControlPlaneCount, workerCount: machines.filter((m) => m.role === "worker").length }
      : {}),
    terraformCloud: organization ? { organization, workspacePrefix, hostname } : undefined,
    ...(runnerPrefix ? { configStack: { runnerPrefix, adoptFirstBoot, waitMinutes: waitMinutes ?? (organization ? 0 : DEFAULT_CONFIG_STACK_WAIT_MINUTES) } } : {}),
    target,
    ...(matchbox ? { matchbox } : {}),
  };
}

/** NODE_TARGET=matchbox: the inventory, checked against the block and the AS, and the endpoints. */
function readMatchbox(
  { inventoryPath, httpEndpoint, rpcEndpoint }: { inventoryPath: string; httpEndpoint: string; rpcEndpoint: string },
  given: (spec: SettingDoc) => string | undefined,
  settings: { addressPlan?: AddressPlan; bgpAsn?: number },
  problems: string[],
): MatchboxSettings | undefined {
  for (const spec of [CONTROL_PLANE_COUNT, WORKER_COUNT]) {
    const value = given(spec);
    if (value) problems.push(`${spec.name}=${value} is not valid with NODE_TARGET=matchbox: MATCHBOX_INVENTORY lists the machines and their roles; unset ${spec.name}`);
  }
  if (!inventoryPath) {
    problems.push(`MATCHBOX_INVENTORY is not set: NODE_TARGET=matchbox needs the path of your machines' inventory (README "Your own bare metal" has an example)`);
    return undefined;
  }
  let text: string;
  try {
    text = fs.readFileSync(inventoryPath, "utf8");
  } catch (err) {
    problems.push(`MATCHBOX_INVENTORY=${inventoryPath} is not valid: the file cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); give the path of your machines' JSON inventory`);
    return undefined;
  }
  // Without a valid block or AS there is nothing to check the addresses and neighbours against.
  if (!settings.addressPlan || settings.bgpAsn === undefined) return undefined;
  try {
    const inventory = parseInventory(text, { nodeRange: settings.addressPlan.nodeRange, block: settings.addressPlan.block, clusterAsn: settings.bgpAsn });
    return { inventoryPath, inventory, httpEndpoint, rpcEndpoint };
  } catch (err) {
    if (!(err instanceof InventoryError)) throw err;
    problems.push(...err.problems.map((p) => `MATCHBOX_INVENTORY=${inventoryPath} is not valid: ${p}`));
    return undefined;
  }
}
