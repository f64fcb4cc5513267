/**
 * Values a node fills in only at boot, from the metadata service (afterburn writes
 * /run/metadata/flatcar on Flatcar): Terraform cannot know them when it writes user
 * data (a device's address exists only after the device does). So rendered config
 * files carry these placeholders and the node's boot script
 * (ignition/scripts/render-boot-values.sh) substitutes them.
 *
 * Each placeholder is a plain token that is valid inside a YAML or JSON string and
 * has no Terraform or shell meaning.
 */
export const BOOT_VALUES = {
  /** The node's public IPv6 address (COREOS_PACKET_IPV6_PUBLIC_0). kubelet node-ip, API advertise address. */
  nodeIpv6: "__NODE_IPV6__",
  /** The node's private IPv4 address (COREOS_PACKET_IPV4_PRIVATE_0). BGP router ID on IPv6-only Calico nodes. */
  nodePrivateIpv4: "__NODE_PRIVATE_IPV4__",
} as const;

export type BootValue = keyof typeof BOOT_VALUES;

/** Sample values of the right shape, for checks that need a concrete file (schemas, tests). */
export const SAMPLE_BOOT_VALUES: Readonly<Record<BootValue, string>> = {
  nodeIpv6: "2001:db8:0:ab00::3",
  nodePrivateIpv4: "10.70.20.3",
};

/** Replaces every boot placeholder in `text` with the sample values. */
export function withSampleBootValues(text: string): string {
  let out = text;
  for (const key of Object.keys(BOOT_VALUES) as BootValue[]) out = out.split(BOOT_VALUES[key]).join(SAMPLE_BOOT_VALUES[key]);
  return out;
}
