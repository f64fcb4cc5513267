/**
 * Node names. A node's hostname is also its Kubernetes node name and part of its
 * construct path, so it is derived from the cluster name, the role and the index
 * only: the same settings always give the same names (and the same devices).
 */

export type NodeRole = "control-plane" | "worker";

export class NamingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "NamingError";
  }
}

const RFC1123_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** Returns `hostname` if it is a valid RFC 1123 label (lower case, at most 63 characters), else throws. */
export function validateHostname(hostname: string): string {
  if (!RFC1123_LABEL.test(hostname)) {
    throw new NamingError(
      `hostname "${hostname}" is not a valid RFC 1123 label: use 1 to 63 characters from a-z, 0-9 and "-", starting and ending with a letter or digit`,
    );
  }
  return hostname;
}

/** `v6fabric-cp-1`, `v6fabric-worker-01`: numbered from 1, workers zero-padded so they sort. */
export function nodeHostname(clusterName: string, role: NodeRole, index: number): string {
  const n = index + 1;
  const name = role === "control-plane" ? `${clusterName}-cp-${n}` : `${clusterName}-worker-${String(n).padStart(2, "0")}`;
  return validateHostname(name);
}
