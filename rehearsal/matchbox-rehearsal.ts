/**
 * `npm run rehearse` with NODE_TARGET=matchbox: the operator's inventory applied with
 * the real Terraform and poseidon/matchbox provider against the real Matchbox server on
 * this machine (rehearsal/matchbox.ts), instead of the Metal API emulator.
 *
 *   synth (MATCHBOX_HTTP_ENDPOINT and MATCHBOX_RPC_ENDPOINT pointed at the local server)
 *     -> init -> validate -> plan -> apply -> each machine's configs fetched by MAC, as
 *     iPXE and the installer ask -> a second plan (must change nothing) -> destroy
 *
 * The provider's TLS credentials are the local server's (a fresh CA and client
 * certificate), passed as the TF_VAR_s a deploy uses; the operator's are never read.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { MATCHBOX_CREDENTIAL_VARIABLES } from "../constructs/matchbox-machine";
import { loadSettings } from "../lib/settings";
import { log } from "./build";
import { seconds, table } from "./format";
import { startMatchbox } from "./matchbox";
import { readStack, synthesize } from "./rehearse";
import { rehearsalRoot } from "./root-module";
import { PlanJson, Terraform, plannedActions } from "./terraform";
import { buildMissing } from "./tools";

/** Variables that must not reach the rehearsal's Terraform: the operator's real credentials. */
const OPERATOR_CREDENTIALS = new RegExp(`^TF_VAR_(${Object.values(MATCHBOX_CREDENTIAL_VARIABLES).join("|")})$`);

export async function rehearseMatchbox(env: NodeJS.ProcessEnv, keepDir?: string): Promise<number> {
  const started = Date.now();
  buildMissing(["terraform", "matchbox"], { required: true });
  const settings = loadSettings(env);
  const machines = settings.matchbox!.inventory.machines;
  const work = keepDir ? path.resolve(keepDir) : fs.mkdtempSync(path.join(os.tmpdir(), "v6fabric-rehearsal-matchbox-"));
  fs.mkdirSync(work, { recursive: true });
  const server = await startMatchbox(path.join(work, "matchbox"));
  const timings: Record<string, number> = {};
  const step = <T>(name: string, run: () => T): T => {
    log(`  ${name} ...`);
    const t0 = Date.now();
    const value = run();
    timings[name] = Date.now() - t0;
    return value;
  };
  try {
    log(`rehearse: Matchbox v0.11.0 at ${server.httpEndpoint} (HTTP) and ${server.rpcEndpoint} (gRPC, TLS client certificates)`);
    const outdir = path.join(work, "cdktf.out");
    const local = { ...env, MATCHBOX_HTTP_ENDPOINT: server.httpEndpoint, MATCHBOX_RPC_ENDPOINT: server.rpcEndpoint };
    const [stack] = synthesize(local, outdir);
    const tfDir = path.join(work, "stacks", stack);
    fs.mkdirSync(tfDir, { recursive: true });
    const root = rehearsalRoot(readStack(outdir, stack), "terraform.tfstate");
    fs.writeFileSync(path.join(tfDir, "main.tf.json"), `${JSON.stringify(root.root, null, 2)}\n`);
    const baseEnv = Object.fromEntries(Object.entries(env).filter(([k]) => !OPERATOR_CREDENTIALS.test(k)));
    const { ca, clientCert, clientKey } = server.credentials;
    const tf = new Terraform(tfDir, {
      ...baseEnv,
      [`TF_VAR_${MATCHBOX_CREDENTIAL_VARIABLES.ca}`]: ca,
      [`TF_VAR_${MATCHBOX_CREDENTIAL_VARIABLES.clientCert}`]: clientCert,
      [`TF_VAR_${MATCHBOX_CREDENTIAL_VARIABLES.clientKey}`]: clientKey,
    });
    step("init", () => tf.must(["init", "-input=false", "-no-color"]));
    step("validate", () => tf.must(["validate", "-no-color"]));
    const plan = step("plan", () => {
      tf.must(["plan", "-input=false", "-no-color", "-out=rehearsal.tfplan"]);
      return tf.json<PlanJson>(["show", "-json", "rehearsal.tfplan"]);
    });
    step("apply", () => tf.must(["apply", "-input=false", "-no-color", "rehearsal.tfplan"]));
    const profiles = fs.readdirSync(path.join(server.dataDir, "profiles")).length;
    const groups = fs.readdirSync(path.join(server.dataDir, "groups")).length;
    const rows = [["machine", "role", "MAC", "install config", "installed config"]];
    for (const m of machines) {
      const mac = m.mac.replace(/:/g, "-");
      const size = async (query: string) => {
        const response = await fetch(`${server.httpEndpoint}/ignition?${query}`);
        return response.ok ? `${((await response.arrayBuffer()).byteLength / 1024).toFixed(1)} KiB` : `HTTP ${response.status} (bad)`;
      };
      rows.push([m.name, m.role, m.mac, await size(`mac=${mac}`), await size(`mac=${mac}&os=installed`)]);
    }
    const changes = step("second plan", () => {
      const r = tf.run(["plan", "-input=false", "-no-color", "-detailed-exitcode"]);
      if (r.status !== 0 && r.status !== 2) throw new Error(`terraform plan failed:\n${r.stderr}`);
      return r.status === 2;
    });
    if (!keepDir) step("destroy", () => tf.must(["destroy", "-auto-approve", "-input=false", "-no-color"]));
    const created = Object.entries(plannedActions(plan)).map(([type, a]) => `${Object.values(a).reduce((x, y) => x + y, 0)} ${type}`).join(", ");
    log("");
    log(table(rows));
    log("");
    log(table([
      ["created", "plan", "apply", "second plan", "destroy"],
      [created, seconds(timings.plan), seconds(timings.apply), changes ? "CHANGES (bad)" : "no changes", keepDir ? "kept" : seconds(timings.destroy)],
    ]));
    log(`note: Matchbox stored ${profiles} profiles (one install profile and one per machine) and ${groups} groups (two per machine)`);
    if (root.replacedBackend) log(`note: backend ${root.replacedBackend} replaced by a local state file for the rehearsal`);
    log(`rehearse: done in ${seconds(Date.now() - started)}${keepDir ? `; working directory kept in ${work}` : ""}`);
    return changes || rows.some((r) => r.some((c) => c.includes("(bad)"))) ? 1 : 0;
  } finally {
    await server.stop();
    if (!keepDir) fs.rmSync(work, { recursive: true, force: true });
  }
}
