/**
 * Turns a synthesized stack into the root module the rehearsal applies.
 *
 * The equinix/metal provider cannot be built here (docs/rehearsal.md), so the Metal
 * resources are left out, and said to be: each device's `user_data` becomes a
 * sensitive output, evaluated by the real Terraform with the real tls provider
 * exactly as it would be for the device; references to a device's address
 * become the address Metal would assign (a /127 from the first /64 of the block, as
 * the rehearsal's nodes get). A Terraform Cloud backend becomes a local one. Anything
 * else that names a Metal object stops the rehearsal with a message, so nothing is
 * dropped silently.
 *
 * Pure: JSON in, JSON out.
 */
import { Address6 } from "ip-address";

// The synthesized JSON is Terraform's JSON syntax: objects of objects.
type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** A device of the stack, with the addresses the rehearsal gives it. */
export interface RehearsalDevice {
  /** Logical ID of the metal_device resource. */
  readonly resourceId: string;
  readonly hostname: string;
  readonly tags: readonly string[];
  /** Name of the sensitive output holding the device's user data. */
  readonly userDataOutput: string;
  /** The device's public IPv6 /127: its address and the gateway (Metal: network = gateway). */
  readonly publicIpv6: string;
  readonly publicIpv6Gateway: string;
}

export interface RehearsalRoot {
  readonly root: Json;
  readonly devices: readonly RehearsalDevice[];
  /** What the rehearsal does not apply, as "<count> <type>" lines for the summary. */
  readonly leftOut: readonly string[];
  /** The backend the stack declared, when it was not local (the rehearsal uses a local one). */
  readonly replacedBackend?: string;
}

export const USER_DATA_OUTPUT_PREFIX = "rehearsal_user_data_";

const METAL = /^metal_/;

/**
 * The /127 Metal would give the n-th device (0-based) in the project's first /64:
 * the even address is the gateway, the odd one the device (facts: network-helpers fixtures).
 */
export function deviceIpv6(blockCidr: string, n: number): { address: string; gateway: string } {
  const block = new Address6(blockCidr);
  const base = BigInt(block.startAddress().bigInt().toString());
  const at = (offset: bigint) => Address6.fromBigInt(base + offset).correctForm();
  return { gateway: at(BigInt(2 * n)), address: at(BigInt(2 * n + 1)) };
}

export function rehearsalRoot(stack: Json, stateFile: string): RehearsalRoot {
  const root: Json = JSON.parse(JSON.stringify(stack));
  const block = root.output?.fabric_summary?.value?.addressPlan?.block;
  if (typeof block !== "string") throw new Error("the stack has no fabric_summary output with addressPlan.block; is it a v6fabric cluster stack?");

  const leftOut: string[] = [];
  const devices: RehearsalDevice[] = [];
  const replacements = new Map<string, string>();

  const deviceEntries = Object.entries((root.resource?.metal_device ?? {}) as Json);
  deviceEntries.forEach(([resourceId, device], n) => {
    const { address, gateway } = deviceIpv6(block, n);
    const hostname = String(device.hostname);
    const userDataOutput = `${USER_DATA_OUTPUT_PREFIX}${hostname}`;
    devices.push({ resourceId, hostname, tags: device.tags ?? [], userDataOutput, publicIpv6: address, publicIpv6Gateway: gateway });
    replacements.set(`metal_device.${resourceId}.access_public_ipv6`, address);
    root.output ??= {};
    root.output[userDataOutput] = {
      description: `user_data of metal_device.${resourceId} as Terraform renders it for the device`,
      value: device.user_data,
      sensitive: true,
    };
  });

  for (const kind of ["resource", "data"] as const) {
    for (const type of Object.keys(root[kind] ?? {})) {
      if (!METAL.test(type)) continue;
      leftOut.push(`${Object.keys(root[kind][type]).length} ${kind === "data" ? "data." : ""}${type}`);
      delete root[kind][type];
    }
    if (root[kind] && Object.keys(root[kind]).length === 0) delete root[kind];
  }
  if (root.import) {
    leftOut.push(`${root.import.length} import block(s)`);
    delete root.import;
  }
  delete root.provider?.metal;
  delete root.terraform?.required_providers?.metal;

  let replacedBackend: string | undefined;
  const backends = root.terraform?.backend ?? {};
  if (root.terraform?.cloud) replacedBackend = `Terraform Cloud (organization ${root.terraform.cloud.organization})`;
  else if (Object.keys(backends).some((b) => b !== "local")) replacedBackend = Object.keys(backends).join(", ");
  delete root.terraform.cloud;
  root.terraform.backend = { local: { path: stateFile } };

  const rewritten = rewriteStrings(root, (text, where) =>
    text.replace(/\$\{([^{}]*)\}/g, (whole, expression: string) => {
      const trimmed = expression.trim();
      if (replacements.has(trimmed)) return replacements.get(trimmed)!;
      // Inside a larger expression (e.g. the API servers file's join()), a device's address becomes a string literal.
      const substituted = expression.replace(/\bmetal_device\.[\w-]+\.access_public_ipv6\b/g, (reference) => (replacements.has(reference) ? JSON.stringify(replacements.get(reference)) : reference));
      if (substituted !== expression && !/\b(data\.)?metal_[a-z_]+\./.test(substituted)) return `\${${substituted}}`;
      if (/\b(data\.)?metal_[a-z_]+\./.test(expression)) {
        throw new Error(`${where}: ${whole} names a Metal object the rehearsal does not apply; teach rehearsal/offline-stack.ts what Metal would return`);
      }
      return whole;
    }),
  );
  dropMetalDependencies(rewritten);
  return { root: rewritten, devices, leftOut, replacedBackend };
}

function rewriteStrings(value: Json, rewrite: (text: string, where: string) => string, where = ""): Json {
  if (typeof value === "string") return rewrite(value, where) as unknown as Json;
  if (Array.isArray(value)) return value.map((v, i) => rewriteStrings(v, rewrite, `${where}[${i}]`)) as unknown as Json;
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, rewriteStrings(v, rewrite, where ? `${where}.${k}` : k)]));
  }
  return value;
}

function dropMetalDependencies(root: Json): void {
  for (const kind of ["resource", "data", "output"] as const) {
    for (const group of Object.values((root[kind] ?? {}) as Json)) {
      const items: Json[] = kind === "output" ? [group] : Object.values(group as Json);
      for (const item of items) {
        if (Array.isArray(item.depends_on)) {
          item.depends_on = item.depends_on.filter((d: string) => !/^(data\.)?metal_/.test(d));
          if (item.depends_on.length === 0) delete item.depends_on;
        }
      }
    }
  }
}
