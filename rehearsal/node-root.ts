/**
 * A rehearsal node's root before its units run: what the real `ignition` binary writes
 * from the user data Metal holds, the downloads it could not fetch offline (from local
 * copies, checked against their pinned hashes), the rehearsal's Kubernetes builds where
 * the node expects its binaries, and what afterburn writes from Metal's metadata at boot.
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { mergeSource, readMergedConfig, unpackUserData } from "../ignition/user-data";
import { IgnitionConfig } from "../ignition/types";
import { DEFAULT_KUBERNETES_VERSION } from "../lib/versions";
import { NodeAddresses, RehearsalNode } from "./nodes";
import { KUBERNETES_COMMANDS, etcdBinary, kubernetesBinary } from "./tools";

const PROJECT_DIR = path.resolve(__dirname, "..");
const IGNITION_APPLY = path.join(PROJECT_DIR, "reference", "tools", "ignition-apply-check.sh");

/**
 * Applies `userData` with the real ignition binary (through the reference apply check,
 * which also validates it and verifies the units it writes) into a fresh root under
 * `nodeDir`; returns that root. Remote sources (the pinned Kubernetes downloads) are
 * skipped: the rehearsal puts its own builds in their place. `asVersion` has the check
 * read a config of a spec Debian's Ignition 2.14 does not know under one it does (its
 * `--as-version`): Matchbox serves 3.4.0, which 2.14 knows as 3.4.0-experimental.
 */
export function applyIgnition(userData: string, nodeDir: string, options: { asVersion?: string } = {}): { root: string; log: string } {
  fs.mkdirSync(nodeDir, { recursive: true });
  // user-data.ign: the bytes Metal holds; what the offline apply check reads has its downloads blanked.
  fs.writeFileSync(path.join(nodeDir, "user-data.ign"), userData, { mode: 0o600 });
  const config = path.join(nodeDir, "user-data.offline.ign");
  fs.writeFileSync(config, withoutDownloads(userData), { mode: 0o600 });
  const args = [IGNITION_APPLY, "--keep", `--workdir=${nodeDir}`, ...(options.asVersion ? [`--as-version=${options.asVersion}`] : []), config];
  const result = spawnSync("bash", args, { encoding: "utf8", timeout: 300_000 });
  const log = `${result.stdout}${result.stderr}`;
  fs.writeFileSync(path.join(nodeDir, "ignition-apply.log"), log);
  const scratch = fs.readdirSync(nodeDir).find((d) => d.startsWith("ign-check."));
  if (result.status !== 0 || !scratch) throw new Error(`ignition apply failed (exit ${result.status}):\n${log.split("\n").slice(-30).join("\n")}`);
  const root = path.join(nodeDir, scratch, "root");
  // The check stubs Exec binaries the config does not write, so that systemd-analyze can
  // verify the units. Under /opt they are the node's own, made at run time (the nat64
  // unit unpacks /opt/bin/tayga unless it is there): on a first boot they do not exist yet.
  for (const [, stubbed] of log.matchAll(/Exec binary (\/opt\/\S+) not written by the config; assumed present at runtime \(stubbed for verify\)/g)) {
    const file = path.join(root, stubbed);
    if (fs.existsSync(file) && fs.readFileSync(file, "utf8") === "#!/bin/sh\n") fs.rmSync(file);
  }
  return { root, log };
}

/**
 * The user data with the downloads inside its merged configs blanked (`data:,`), as
 * the apply check blanks top-level ones: it runs offline and cannot see into the gzip'd
 * merged config (ignition/user-data.ts), nor into the Metal user data a Matchbox
 * machine's config merges (ignition/matchbox.ts). installDownloads then writes them from
 * local copies, checked against their hashes. Everything else is the user data as applied.
 */
export function withoutDownloads(userData: string): string {
  return JSON.stringify(blankMerged(JSON.parse(userData) as IgnitionConfig));
}

function blankMerged(config: IgnitionConfig): IgnitionConfig {
  const merge = (config.ignition.config?.merge ?? []).map((resource) => {
    const merged = blankMerged(readMergedConfig(resource));
    const files = (merged.storage?.files ?? []).map((f) => (f.contents && !f.contents.source.startsWith("data:") ? { ...f, contents: { source: "data:," } } : f));
    return mergeSource(merged.storage ? { ...merged, storage: { ...merged.storage, files } } : merged);
  });
  return merge.length > 0 ? { ...config, ignition: { ...config.ignition, config: { merge } } } : config;
}

/** What afterburn (coreos-metadata.service) writes on Metal: /run/metadata/flatcar. */
export function afterburnMetadata(hostname: string, a: NodeAddresses): string {
  return [
    `COREOS_PACKET_HOSTNAME=${hostname}`,
    `COREOS_PACKET_IPV6_PUBLIC_0=${a.ipv6}`,
    `COREOS_PACKET_IPV6_PUBLIC_GATEWAY_0=${a.ipv6Gateway}`,
    `COREOS_PACKET_IPV4_PRIVATE_0=${a.privateIpv4}`,
    `COREOS_PACKET_IPV4_PRIVATE_GATEWAY_0=${a.privateIpv4Gateway}`,
    "",
  ].join("\n");
}

/** The part of Metal's metadata JSON afterburn reads (docs/facts.md). */
export interface MetadataDocument {
  readonly hostname: string;
  readonly network: { readonly addresses: readonly { address_family: number; public: boolean; address: string; gateway: string }[] };
}

/** What a node takes from its metadata: afterburn's addresses, and the public IPv4 /31 its NAT64 leaves from. */
export interface MetadataAddresses extends NodeAddresses {
  readonly hostname: string;
  readonly privateIpv4Gateway: string;
  readonly publicIpv4: string;
  readonly publicIpv4Gateway: string;
}

/**
 * The addresses a node reads from its metadata, the first of each kind as afterburn's
 * packet provider takes them. One function for the boot (readMetadataAtBoot), the
 * fabric's public IPv4 and the Terraform rehearsal's check against Terraform's state.
 * Throws when the metadata lacks one.
 */
export function metadataAddresses(document: MetadataDocument): MetadataAddresses {
  const find = (family: number, isPublic: boolean) => {
    const found = document.network.addresses.find((a) => a.address_family === family && a.public === isPublic);
    if (!found) throw new Error(`${document.hostname}: the metadata has no ${isPublic ? "public" : "private"} IPv${family} address`);
    return found;
  };
  const [ipv6, privateIpv4, publicIpv4] = [find(6, true), find(4, false), find(4, true)];
  return {
    hostname: document.hostname,
    ipv6: ipv6.address,
    ipv6Gateway: ipv6.gateway,
    privateIpv4: privateIpv4.address,
    privateIpv4Gateway: privateIpv4.gateway,
    publicIpv4: publicIpv4.address,
    publicIpv4Gateway: publicIpv4.gateway,
  };
}

/**
 * afterburn's packet provider, as coreos-metadata.service runs it at boot: the node asks
 * the metadata service (which knows it by its source address) and writes
 * /run/metadata/flatcar from the answer. Throws when the answer lacks an address the
 * node needs.
 */
export function readMetadataAtBoot(node: RehearsalNode, url: string): MetadataDocument {
  // afterburn retries a failed request with backoff (its retry client); so does this. A
  // node's first packets after its sysctls change (forwarding on) can find the gateway
  // unreachable for a moment: one fabric run failed its boot that way.
  const fetched = node.exec(["curl", "--fail", "--silent", "--show-error", "--max-time", "10", "--retry", "10", "--retry-delay", "1", "--retry-all-errors", url], { timeoutMs: 150_000 });
  if (fetched.status !== 0) throw new Error(`${node.hostname}: ${url} answered no metadata: ${fetched.stderr.trim()}`);
  const document = JSON.parse(fetched.stdout) as MetadataDocument;
  const addresses = metadataAddresses(document);
  fs.mkdirSync(path.dirname(node.hostPath("/run/metadata/flatcar")), { recursive: true });
  fs.writeFileSync(node.hostPath("/run/metadata/flatcar"), afterburnMetadata(addresses.hostname, addresses));
  return document;
}

/** The upstream files the rehearsal has for a node's downloads, by URL. */
export const LOCAL_DOWNLOADS: Readonly<Record<string, string>> = {
  "https://raw.githubusercontent.com/projectcalico/calico/v3.32.1/manifests/tigera-operator.yaml": path.join(PROJECT_DIR, "reference", "upstream", "calico-v3.32.1", "tigera-operator.yaml"),
  "https://raw.githubusercontent.com/projectcalico/calico/v3.32.1/manifests/v3_projectcalico_org.yaml": path.join(PROJECT_DIR, "reference", "upstream", "calico-v3.32.1", "v3_projectcalico_org.yaml"),
};

/**
 * Writes the downloads Ignition skipped (the apply check runs offline) from local
 * copies, each checked against the verification hash in the user data exactly as
 * Ignition checks it. Returns the URLs that have no local copy.
 */
export function installDownloads(root: string, userData: string, local: Readonly<Record<string, string>> = LOCAL_DOWNLOADS): string[] {
  // The downloads sit in the gzip'd boot config the user data merges (ignition/user-data.ts).
  const config = unpackUserData(JSON.parse(userData) as IgnitionConfig);
  const missing: string[] = [];
  for (const f of config.storage?.files ?? []) {
    const source = f.contents?.source ?? "";
    if (!/^https?:/.test(source)) continue;
    const copy = local[source];
    if (!copy) {
      missing.push(source);
      continue;
    }
    const bytes = fs.readFileSync(copy);
    const [algorithm, expected] = (f.contents?.verification?.hash ?? "").split("-");
    const actual = createHash(algorithm).update(bytes).digest("hex");
    if (actual !== expected) throw new Error(`${source}: the local copy ${copy} has ${algorithm} ${actual}, the user data pins ${expected}`);
    const target = path.join(root, f.path);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.writeFileSync(target, bytes, { mode: f.mode ?? 0o644 });
  }
  return missing;
}

/** Puts the rehearsal's Kubernetes and etcd builds where the node expects its binaries (/opt/bin). */
export function installBinaries(root: string, version = DEFAULT_KUBERNETES_VERSION): void {
  const bin = path.join(root, "opt", "bin");
  fs.mkdirSync(bin, { recursive: true });
  const place = (from: string, name: string) => {
    const to = path.join(bin, name);
    fs.rmSync(to, { force: true }); // Ignition wrote an empty stand-in for the skipped download
    try {
      fs.linkSync(from, to); // same filesystem: no copy of half a gigabyte per node
    } catch {
      fs.copyFileSync(from, to);
      fs.chmodSync(to, 0o755);
    }
  };
  for (const command of KUBERNETES_COMMANDS) place(kubernetesBinary(command, version), command);
  place(etcdBinary(), "etcd");
}

