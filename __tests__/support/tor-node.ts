/**
 * The node side of the routers' lab tests (rehearsal/tor-lab.ts): cp-1 of the README's
 * example inventory, its BIRD announcing what a test asks as calico-node's BIRD would, and
 * what the routers must accept and refuse, written out of the README's address plan.
 */
import { spawnSync } from "node:child_process";

export const ROUTER = "2001:db8:0:ab00::2";
export const NODE = "2001:db8:0:ab00::11";

/** Pod blocks, the Service ClusterIP range, the external range and a Local /128. */
export const ACCEPTED = ["2001:db8:0:ab10::100/120", "2001:db8:0:ab10::1:0/120", "2001:db8:0:ab20::/108", "2001:db8:0:ab30::/112", "2001:db8:0:ab30::8001/128"];
/** A pod /128, a ClusterIP /128, an external /128 outside the Local pool, the whole block, a prefix outside it. */
export const REFUSED = ["2001:db8:0:ab10::105/128", "2001:db8:0:ab20::a/128", "2001:db8:0:ab30::5/128", "2001:db8:0:ab00::/56", "2001:db8:ff::/48"];
/** Ten pod blocks: two more than the prefix budget (8 with the defaults). */
export const TEN_BLOCKS = Array.from({ length: 10 }, (_, i) => `2001:db8:0:ab10::${(i + 1).toString(16)}00/120`);

/**
 * The node's BIRD announcing `prefixes` to the router, from the cluster's AS (65000);
 * passive: the router connects (TorLab.start). With `password`, the session's TCP MD5 key
 * (what calico-node's BIRD sets from the BGPPeer's password).
 */
export function nodeConfig(prefixes: readonly string[], password?: string): string {
  return [
    "router id 10.70.0.11;",
    "protocol device {",
    "}",
    "protocol static announced {",
    "  ipv6;",
    ...prefixes.map((p) => `  route ${p} blackhole;`),
    "}",
    "protocol bgp tor {",
    `  local ${NODE} as 65000;`,
    `  neighbor ${ROUTER} as 65100;`,
    ...(password === undefined ? [] : [`  password "${password}";`]),
    "  passive on;",
    "  ipv6 { import all; export all; };",
    "}",
    "",
  ].join("\n");
}

export async function waitFor(what: string, check: () => boolean, ms = 30_000): Promise<number> {
  const started = Date.now();
  while (!check()) {
    if (Date.now() - started > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  return Date.now() - started;
}

/** Why the lab cannot run here (root and the programs it needs), or undefined. */
export function labUnavailable(programs: readonly string[]): string | undefined {
  if (typeof process.getuid !== "function" || process.getuid() !== 0) return "not root (network namespaces)";
  const missing = programs.filter((t) => spawnSync("sh", ["-c", `command -v ${t}`]).status !== 0);
  return missing.length > 0 ? `missing ${missing.join(", ")} (apt-get install bird2 frr iproute2; .ci/run installs them)` : undefined;
}
