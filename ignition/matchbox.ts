/**
 * Ignition for the Matchbox target (NODE_TARGET=matchbox, docs/matchbox.md): the
 * operator's own machines, PXE-booted through Matchbox.
 *
 * A machine's installed config is a small wrapper around the very user data the Metal
 * target renders for the same role and addresses: that user data is its one merged
 * config, byte for byte (a `data:` URL), and the wrapper adds only the metadata source,
 * what Metal's metadata service would say of the machine:
 *
 * - METADATA_PATHS.env, in afterburn's /run/metadata/flatcar format (the node's IPv6,
 *   its gateway, its private IPv4), and METADATA_PATHS.json with Metal's
 *   `bgp_neighbors`, both from the inventory;
 * - a drop-in for each unit whose script reads the metadata, pointing it there
 *   (V6FABRIC_METADATA_ENV, V6FABRIC_METADATA_URL: the scripts' own switches);
 * - a systemd-networkd file for the machine's interface (by MAC) with its addresses and
 *   gateway, which Metal's OEM network setup does on Metal.
 *
 * The install config, one for every machine, runs flatcar-install with the machine's
 * installed config, which it fetches from Matchbox by the query iPXE passed on the
 * kernel command line plus `os=installed` (Typhoon's bare-metal module does the same).
 */
import { IgnitionConfig, IGNITION_SPEC_VERSION, dataUrl } from "./types";
import { escapeTerraformTemplate } from "./terraform-escape";

/** Where the metadata the boot scripts read lives on a Matchbox machine. */
export const METADATA_PATHS = {
  env: "/etc/v6fabric/metadata/flatcar",
  json: "/etc/v6fabric/metadata/metadata.json",
  network: "/etc/systemd/network/00-v6fabric-uplink.network",
} as const;

/** The units whose scripts read the metadata (ignition/scripts: render-boot-values, bgp-peer-routes, api-path). */
export const METADATA_READERS = ["v6fabric-boot-values.service", "v6fabric-bgp-peer-routes.service", "v6fabric-api-path.service"] as const;

export const METADATA_DROPIN = "10-v6fabric-metadata-source.conf";

/** What Metal's metadata service says of a device, for one inventory machine. */
export interface MachineMetadata {
  readonly hostname: string;
  /** Boot interface MAC, lower-case with colons. */
  readonly mac: string;
  readonly ipv6: string;
  readonly ipv6PrefixLength: number;
  readonly gateway: string;
  readonly privateIpv4: string;
  /** The cluster's AS (customer_as in Metal's bgp_neighbors). */
  readonly clusterAsn: number;
  readonly neighbors: readonly { readonly address: string; readonly asn: number }[];
}

/** afterburn's variables, as it writes /run/metadata/flatcar on Metal (what the scripts read). */
export function metadataEnv(m: MachineMetadata): string {
  return [`COREOS_PACKET_HOSTNAME=${m.hostname}`, `COREOS_PACKET_IPV4_PRIVATE_0=${m.privateIpv4}`, `COREOS_PACKET_IPV6_PUBLIC_0=${m.ipv6}`, `COREOS_PACKET_IPV6_PUBLIC_GATEWAY_0=${m.gateway}`, ""].join("\n");
}

/** Metal's metadata JSON, the part the scripts read: `bgp_neighbors`, one entry per neighbour AS. */
export function metadataJson(m: MachineMetadata): string {
  const byAsn = new Map<number, string[]>();
  for (const n of m.neighbors) byAsn.set(n.asn, [...(byAsn.get(n.asn) ?? []), n.address]);
  const neighbors = [...byAsn].map(([asn, peers]) => ({ address_family: 6, customer_as: m.clusterAsn, customer_ip: m.ipv6, multihop: true, peer_as: asn, peer_ips: peers }));
  return `${JSON.stringify({ hostname: m.hostname, bgp_neighbors: neighbors }, null, 2)}\n`;
}

/** systemd-networkd: the machine's interface by MAC, its public IPv6 and gateway, the private IPv4 (router ID). */
export function uplinkNetwork(m: MachineMetadata): string {
  return [
    "# v6fabric: the machine's uplink, from the inventory (on Metal the OEM network setup does this).",
    "[Match]",
    `MACAddress=${m.mac}`,
    "",
    "[Network]",
    "DHCP=ipv4",
    `Address=${m.ipv6}/${m.ipv6PrefixLength}`,
    `Address=${m.privateIpv4}/32`,
    `Gateway=${m.gateway}`,
    "",
  ].join("\n");
}

function metadataDropin(): string {
  return [
    "# v6fabric: this machine's metadata comes from the inventory (Matchbox target), not a metadata service.",
    "[Service]",
    `Environment=V6FABRIC_METADATA_ENV=${METADATA_PATHS.env}`,
    `Environment=V6FABRIC_METADATA_URL=file://${METADATA_PATHS.json}`,
    "",
  ].join("\n");
}

/** The metadata source: what the Matchbox target adds to the Metal user data, and nothing else. */
export function metadataSourceConfig(m: MachineMetadata): IgnitionConfig {
  const file = (path: string, mode: number, text: string) => ({ path, mode, overwrite: true, contents: { source: dataUrl(text) } });
  return {
    ignition: { version: IGNITION_SPEC_VERSION },
    storage: {
      files: [file(METADATA_PATHS.env, 0o644, metadataEnv(m)), file(METADATA_PATHS.json, 0o644, metadataJson(m)), file(METADATA_PATHS.network, 0o644, uplinkNetwork(m))],
    },
    systemd: { units: METADATA_READERS.map((name) => ({ name, dropins: [{ name: METADATA_DROPIN, contents: metadataDropin() }] })) },
  };
}

/**
 * A machine's installed config, as a Terraform string: `userDataBase64` is one Terraform
 * expression (a cdktf token) that yields the Metal user data base64-encoded, merged as is.
 */
export function machineIgnition(userDataBase64: string, m: MachineMetadata): string {
  const overlay = metadataSourceConfig(m);
  const config: IgnitionConfig = { ...overlay, ignition: { version: IGNITION_SPEC_VERSION, config: { merge: [{ source: `data:;base64,${userDataBase64}` }] } } };
  return escapeTerraformTemplate(JSON.stringify(config));
}

export interface InstallInput {
  /** MATCHBOX_HTTP_ENDPOINT, e.g. http://matchbox.example:8080. */
  readonly httpEndpoint: string;
  /** FLATCAR_CHANNEL. */
  readonly channel: string;
}

/** The kernel command line's Ignition URL selects the machine by MAC; iPXE fills in `${mac:hexhyp}`. */
export function installKernelArgs(input: InstallInput): string[] {
  return [
    "initrd=flatcar_production_pxe_image.cpio.gz",
    `flatcar.config.url=${input.httpEndpoint}/ignition?mac=\${mac:hexhyp}`,
    "flatcar.first_boot=yes",
    "console=tty0",
    "console=ttyS0",
  ];
}

/** Flatcar's PXE kernel and initramfs of the channel's current release. */
export function installImages(channel: string): { kernel: string; initrd: string[] } {
  const base = `https://${channel}.release.flatcar-linux.net/amd64-usr/current`;
  return { kernel: `${base}/flatcar_production_pxe.vmlinuz`, initrd: [`${base}/flatcar_production_pxe_image.cpio.gz`] };
}

const INSTALL_SCRIPT = `#!/bin/bash
# v6fabric: installs Flatcar to the disk the machine's Matchbox group names, with the
# machine's installed config, then reboots into it. The query iPXE used for this
# config (the machine's MAC) selects the machine's group; os=installed its installed one.
# The kernel command line and the work folder come from the environment so tests can run it.
set -euo pipefail
endpoint=@ENDPOINT@
cmdline=\${V6FABRIC_CMDLINE:-/proc/cmdline}
work=\${V6FABRIC_INSTALL_DIR:-/run}
query=$(tr ' ' '\\n' <"$cmdline" | sed -n 's/^flatcar\\.config\\.url=[^?]*?//p' | head -n 1)
if [ -z "$query" ]; then
	echo "v6fabric-install: no flatcar.config.url query on the kernel command line" >&2
	exit 1
fi
curl --fail --silent --show-error --retry 10 --retry-delay 5 -o "$work/v6fabric-metadata" "$endpoint/metadata?$query"
disk=$(sed -n 's/^INSTALL_DISK=//p' "$work/v6fabric-metadata" | head -n 1)
if [ -z "$disk" ]; then
	echo "v6fabric-install: Matchbox's metadata for $query names no INSTALL_DISK" >&2
	exit 1
fi
curl --fail --silent --show-error --retry 10 --retry-delay 5 -o "$work/v6fabric-installed.ign" "$endpoint/ignition?$query&os=installed"
flatcar-install -d "$disk" -C @CHANNEL@ -i "$work/v6fabric-installed.ign"
udevadm settle
systemctl reboot
`;

/** The install config every machine boots first (one Matchbox profile for all). */
export function installIgnition(input: InstallInput): string {
  const script = INSTALL_SCRIPT.replace("@ENDPOINT@", input.httpEndpoint).replace("@CHANNEL@", input.channel);
  const unit = [
    "[Unit]",
    "Description=v6fabric: install Flatcar with this machine's config from Matchbox",
    "Wants=network-online.target",
    "After=network-online.target",
    "",
    "[Service]",
    "Type=oneshot",
    "ExecStart=/opt/v6fabric-install",
    "",
    "[Install]",
    "WantedBy=multi-user.target",
    "",
  ].join("\n");
  const config: IgnitionConfig = {
    ignition: { version: IGNITION_SPEC_VERSION },
    storage: { files: [{ path: "/opt/v6fabric-install", mode: 0o755, contents: { source: dataUrl(script) } }] },
    systemd: { units: [{ name: "v6fabric-install.service", enabled: true, contents: unit }] },
  };
  return escapeTerraformTemplate(JSON.stringify(config));
}
