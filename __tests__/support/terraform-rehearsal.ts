/**
 * Checks the Terraform rehearsal (rehearsal-terraform.test.ts) runs on each applied
 * variant: the default cluster, 3 + 5 and the Terraform Cloud stack.
 */
import * as fs from "node:fs";
import type { StackRehearsal } from "../../rehearsal/rehearse";
import { plannedActions } from "../../rehearsal/terraform";

/** A stack applied against the Metal API emulator, with what the test reads of it. */
export interface Applied {
  rehearsal: StackRehearsal;
  outputs: Record<string, { value: unknown; sensitive: boolean }>;
  planText: string;
  created: Record<string, Record<string, number>>;
  milliseconds: number;
  /** Requests the Metal API emulator served during apply. */
  requests: number;
}

/** What the emulator holds apart from the project and its blocks: must be nothing after destroy. */
export function leftInMetal(rehearsal: StackRehearsal): string[] {
  const state = rehearsal.metal.state();
  return [
    ...state.devices.map((d) => `device ${d.hostname}`),
    ...state.bgpSessions.map((b) => `bgp session ${b.id}`),
    ...state.reservations.filter((r) => r.type === "public_ipv4" || r.deviceId).map((r) => `reservation ${r.network}/${r.cidr}`),
  ];
}

/** After destroy: an empty state, and the seeded project and its /56 (the settings' defaults) are all Metal holds. */
export function expectOnlyProjectAndBlock(rehearsal: StackRehearsal): void {
  expect(rehearsal.stateResources()).toEqual([]);
  expect(leftInMetal(rehearsal)).toEqual([]);
  const state = rehearsal.metal.state();
  expect(state.projects.map((p) => p.id)).toEqual(["00000000-0000-0000-0000-000000000000"]);
  expect(state.reservations.filter((r) => r.type === "public_ipv6").map((r) => `${r.network}/${r.cidr}`)).toEqual(["2001:db8:0:ab00::/56"]);
}

/** The private keys' PEM bodies in the state: what must never show in plan output or plain outputs. */
function stateSecrets(rehearsal: StackRehearsal): string[] {
  const state = rehearsal.terraform.json<{ values?: { root_module?: { resources?: { type: string; values: Record<string, unknown> }[] } } }>(["show", "-json"]);
  const secrets: string[] = [];
  for (const r of state.values?.root_module?.resources ?? []) {
    if (r.type === "tls_private_key") secrets.push(String(r.values.private_key_pem).split("\n")[1]);
  }
  return secrets;
}

/**
 * No private key from the state, nor the emulator's token, in the plan output, a plain
 * output or the emulator's log. Keys: the three CAs', the service account's, the admin's,
 * and one join key per node but the first control plane.
 */
export function expectNoSecretLeaks(applied: Applied, nodes: number): void {
  const secrets = stateSecrets(applied.rehearsal);
  expect(secrets.length).toBe(5 + nodes - 1);
  const plain = JSON.stringify(Object.values(applied.outputs).filter((o) => !o.sensitive));
  const log = fs.readFileSync(applied.rehearsal.metal.logFile, "utf8");
  expect(log.split("\n").filter(Boolean).length).toBeGreaterThan(10);
  for (const secret of [...secrets, applied.rehearsal.metal.env().METAL_AUTH_TOKEN]) {
    expect(secret.length).toBeGreaterThan(15);
    expect(applied.planText).not.toContain(secret);
    expect(plain).not.toContain(secret);
    expect(log).not.toContain(secret);
  }
  expect(applied.planText).toContain("(sensitive value)");
}

/**
 * `moreWorkers` (the stack synthesized with WORKER_COUNT raised by 2) plans, against the
 * applied state, a device, a BGP session, a key, a request and a certificate for each of
 * `newHosts`, and nothing else created, changed or replaced; only the summary output moves.
 */
export function expectTwoMoreWorkers(applied: Applied, moreWorkers: Record<string, unknown>, newHosts: readonly string[]): void {
  applied.rehearsal.write(moreWorkers);
  const { plan } = applied.rehearsal.plan("more-workers.tfplan");
  expect(plannedActions(plan)).toEqual({
    metal_device: { create: 2 },
    metal_bgp_session: { create: 2 },
    tls_private_key: { create: 2 },
    tls_cert_request: { create: 2 },
    tls_locally_signed_cert: { create: 2 },
  });
  const created = (plan.resource_changes ?? []).filter((rc) => rc.change.actions.join() === "create").map((rc) => rc.address);
  expect(created).toHaveLength(10);
  for (const host of newHosts) expect(created.filter((address) => address.includes(host))).toHaveLength(5);
  const outputChanges = Object.entries(plan.output_changes ?? {}).filter(([, c]) => c.actions.join() !== "no-op");
  expect(outputChanges.map(([output, c]) => `${output}:${c.actions.join("+")}`).sort()).toEqual(["fabric_summary:update"]); // the worker count
}
