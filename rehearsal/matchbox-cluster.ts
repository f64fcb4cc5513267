/**
 * A rehearsal cluster of the Matchbox target (NODE_TARGET=matchbox): the real Terraform
 * and poseidon/matchbox provider apply the inventory's stack against the real Matchbox
 * server on this machine (matchbox.ts), then every machine becomes a node (nodes.ts)
 * from the Ignition Matchbox serves it:
 *
 *   GET <MATCHBOX_HTTP_ENDPOINT>/ignition?mac=<its MAC>&os=installed
 *
 * what iPXE's install config fetches for `flatcar-install` and the installed machine
 * boots from (docs/matchbox.md). The real `ignition` binary writes the node's root from
 * that config as it writes a Metal node's from the device's user data (node-root.ts), so
 * the metadata source is the one the config carries: the inventory's, in files and
 * drop-ins, no metadata service. The node's link gets what the config's systemd-networkd
 * file says (systemd-networkd does not run in a rehearsal node). control-plane.ts then
 * boots the nodes by their units, as the Metal rehearsals do.
 *
 * Debian's Ignition (2.14) knows Matchbox's spec 3.4.0 only as 3.4.0-experimental, so
 * the apply check reads it under that name (`--as-version`); the config itself is
 * validated as served by Ignition 2.18's ignition-validate (matchbox-tools.ts).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { MATCHBOX_CREDENTIAL_VARIABLES } from "../constructs/matchbox-machine";
import { METADATA_PATHS } from "../ignition/matchbox";
import { ClusterNode, NodeRole, nodeByName, nodesOfRole } from "./cluster";
import { MatchboxServer, startMatchbox } from "./matchbox";
import { applyIgnition, installBinaries, installDownloads } from "./node-root";
import { Fabric, NodeAddresses, RehearsalNode } from "./nodes";
import { readStack, synthesize } from "./rehearse";
import { rehearsalRoot } from "./root-module";
import { Terraform } from "./terraform";

/** The spec Debian's Ignition 2.14 knows 3.4.0 as (its apply check's `--as-version`). */
export const DEBIAN_IGNITION_SPEC_3_4 = "3.4.0-experimental";

/** What the inventory says of a machine that the rehearsal needs: how Matchbox finds it and what it runs. */
interface InventoryEntry {
  readonly name: string;
  readonly role: "control-plane" | "worker";
  readonly mac: string;
}

/**
 * What systemd-networkd would configure from the config's uplink file: the IPv6 address
 * and its network's length, the gateway, the private IPv4 (a /32, no gateway).
 */
export function uplinkAddresses(networkFile: string): NodeAddresses {
  const values = (key: string) => [...networkFile.matchAll(new RegExp(`^${key}=(.+)$`, "gm"))].map((m) => m[1].trim());
  const ipv6 = values("Address").find((a) => a.includes(":"));
  const ipv4 = values("Address").find((a) => !a.includes(":"));
  const [gateway] = values("Gateway");
  if (!ipv6 || !ipv4 || !gateway) throw new Error(`the uplink network file has no IPv6 address, IPv4 address or gateway:\n${networkFile}`);
  const [address, length] = ipv6.split("/");
  return { ipv6: address, ipv6PrefixLength: Number(length), ipv6Gateway: gateway, privateIpv4: ipv4.split("/")[0] };
}

export class MatchboxCluster {
  readonly nodes: ClusterNode[] = [];
  /** Each machine's installed config as Matchbox served it, by name. */
  readonly served = new Map<string, string>();
  readonly fabric: Fabric;
  outputs: Record<string, { value: unknown; sensitive: boolean }> = {};
  private applied = false;
  private destroyed = false;

  private constructor(
    readonly work: string,
    readonly server: MatchboxServer,
    readonly terraform: Terraform,
  ) {
    this.fabric = new Fabric(work);
  }

  /**
   * Starts Matchbox, synthesizes `inventoryFile` with `env` (endpoints pointed at the
   * server), applies it, and makes one node per machine from what Matchbox serves.
   */
  static async prepare(work: string, inventoryFile: string, env: NodeJS.ProcessEnv): Promise<MatchboxCluster> {
    const server = await startMatchbox(path.join(work, "matchbox"));
    let cluster: MatchboxCluster | undefined;
    try {
      const outdir = path.join(work, "cdktf.out");
      const [stack] = synthesize({ ...env, NODE_TARGET: "matchbox", MATCHBOX_INVENTORY: inventoryFile, MATCHBOX_HTTP_ENDPOINT: server.httpEndpoint, MATCHBOX_RPC_ENDPOINT: server.rpcEndpoint }, outdir);
      const tfDir = path.join(work, "terraform");
      fs.mkdirSync(tfDir, { recursive: true });
      fs.writeFileSync(path.join(tfDir, "main.tf.json"), JSON.stringify(rehearsalRoot(readStack(outdir, stack), "terraform.tfstate").root));
      // The provider's credentials reach it as a deploy's would: sensitive TF_VAR_s.
      const { ca, clientCert, clientKey } = server.credentials;
      const terraform = new Terraform(tfDir, {
        PATH: env.PATH,
        HOME: env.HOME,
        [`TF_VAR_${MATCHBOX_CREDENTIAL_VARIABLES.ca}`]: ca,
        [`TF_VAR_${MATCHBOX_CREDENTIAL_VARIABLES.clientCert}`]: clientCert,
        [`TF_VAR_${MATCHBOX_CREDENTIAL_VARIABLES.clientKey}`]: clientKey,
      });
      cluster = new MatchboxCluster(work, server, terraform);
      terraform.must(["init", "-input=false", "-no-color"]);
      cluster.applied = true;
      terraform.must(["apply", "-auto-approve", "-input=false", "-no-color"]);
      cluster.outputs = terraform.json(["output", "-json"]);
      const machines = (JSON.parse(fs.readFileSync(inventoryFile, "utf8")).machines as InventoryEntry[]).map((m) => ({ ...m }));
      for (const [i, m] of machines.entries()) await cluster.boot(m, machines.findIndex((x) => x.role === "control-plane") === i);
      return cluster;
    } catch (err) {
      if (cluster) await cluster.destroy();
      else await server.stop();
      throw err;
    }
  }

  /** A machine's installed config from Matchbox by its MAC, as a node root and a node on the metro. */
  private async boot(machine: InventoryEntry, first: boolean): Promise<void> {
    const query = `mac=${machine.mac.replace(/:/g, "-")}&os=installed`;
    const response = await fetch(`${this.server.httpEndpoint}/ignition?${query}`);
    if (!response.ok) throw new Error(`${machine.name}: Matchbox answered /ignition?${query} with ${response.status}:\n${this.server.log().slice(-2000)}`);
    const config = await response.text();
    this.served.set(machine.name, config);
    const { root } = applyIgnition(config, path.join(this.work, "nodes", machine.name), { asVersion: DEBIAN_IGNITION_SPEC_3_4 });
    installBinaries(root);
    const missingDownloads = installDownloads(root, config);
    const addresses = uplinkAddresses(fs.readFileSync(path.join(root, METADATA_PATHS.network), "utf8"));
    const role: NodeRole = machine.role === "worker" ? "worker" : first ? "init" : "control-plane";
    this.nodes.push({ node: this.fabric.addNode(machine.name, root, addresses), role, missingDownloads });
  }

  byName(hostname: string): RehearsalNode {
    return nodeByName(this.nodes, hostname);
  }

  ofRole(role: NodeRole): RehearsalNode[] {
    return nodesOfRole(this.nodes, role);
  }

  /** Removes the nodes, destroys what Terraform applied and stops Matchbox. Safe to call twice. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    try {
      this.fabric.destroy();
      if (this.applied) this.terraform.run(["destroy", "-auto-approve", "-input=false", "-no-color"]);
    } finally {
      await this.server.stop();
    }
  }
}
