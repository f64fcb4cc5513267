/**
 * The configuration stack (issue #25) on the running fabric: its Terraform runs in the
 * Internet namespace, from the operator's prefix (CONFIG_STACK_RUNNER_PREFIX, inside
 * API_ALLOWED_PREFIXES), and reaches the API through the ClusterIP the routers carry, as
 * a runner would. The first deploy adopts what first boot made; a changed
 * ADMIN_ALLOWED_PREFIXES and LOCAL_SERVICE_ROUTES then reach the running cluster, and
 * the node's SSH port opens to the new admin prefix. Runs last: it replaces the Local pool.
 */
import * as path from "node:path";
import { ConfigStackRehearsal } from "../../rehearsal/config-stack";
import { readStack, synthesize } from "../../rehearsal/rehearse";
import { PlanJson } from "../../rehearsal/terraform";
import { TCP_SERVER, dropped, waitFor } from "./fabric";
import { API_ALLOWED, FabricRehearsal, INTERNET_HOST, WORKERS, fabricEnv } from "./fabric-rehearsal";

const CONFIG = "v6fabric-config";

/** Resource changes other than no-op and read, as [address, actions]. */
const changes = (plan: PlanJson) =>
  (plan.resource_changes ?? [])
    .filter((c) => !["no-op", "read"].includes(c.change.actions.join()))
    .map((c) => [c.address, c.change.actions.join("+")])
    .sort();

/** Converged: the next plan is empty; otherwise its text is the failure's message. */
function expectConverged(config: ConfigStackRehearsal): void {
  const plan = config.terraform.run(["plan", "-input=false", "-no-color", "-detailed-exitcode"]);
  expect([plan.status, plan.status === 0 ? "" : `${plan.stdout}\n${plan.stderr}`.trim().slice(-8000)]).toEqual([0, ""]);
}

export function configStackTests(f: FabricRehearsal): void {
  describe("the configuration stack, run from the Internet against the running cluster", () => {
    let config: ConfigStackRehearsal;
    const clusterState = () => path.join(f.cluster!.terraform.dir, "terraform.tfstate");
    const synthWith = (extra: Record<string, string>, name: string) => {
      const outdir = path.join(f.work, name);
      synthesize({ ...fabricEnv(), ...extra }, outdir);
      return { cluster: readStack(outdir, "v6fabric"), config: readStack(outdir, CONFIG) };
    };

    test("the first deploy adopts every object first boot made and changes none; the next plan is empty", () => {
      config = new ConfigStackRehearsal(readStack(path.join(f.work, "cdktf.out"), CONFIG), path.join(f.work, "config-stack"), clusterState(), process.env, f.internet.netns);
      config.init();
      const { plan } = config.plan();
      const kept = (plan.resource_changes ?? []).filter((c) => c.address.startsWith("kubernetes_manifest."));
      expect(kept.length).toBeGreaterThan(20);
      for (const c of kept) expect([c.address, (c.change as { importing?: unknown }).importing !== undefined]).toEqual([c.address, true]);
      config.apply();
      expectConverged(config);
    }, 600_000);

    test("ADMIN_ALLOWED_PREFIXES and LOCAL_SERVICE_ROUTES changed: the cluster gets them, the cluster stack plans no device change, and SSH opens to the new prefix", async () => {
      const worker = f.node(WORKERS[1]);
      const ssh = { address: worker.addresses.ipv6, port: 22 };
      // A listener on the node's SSH port, as sshd would be.
      const listener = worker.start(["/usr/bin/python3", "-c", TCP_SERVER, "22"], path.join(f.work, "logs", "ssh-port.log"));
      f.background.push({ kill: () => listener.pid && process.kill(-listener.pid, "SIGKILL") });
      await waitFor("the node's port 22 listening", 10_000, () => (worker.exec(["ss", "-Hltn", "sport = :22"]).stdout.includes(":22") ? true : undefined));
      expect(dropped(f.internet.connect(ssh.address, ssh.port))).toEqual([1, "", true]);

      const changed = synthWith({ ADMIN_ALLOWED_PREFIXES: API_ALLOWED, LOCAL_SERVICE_ROUTES: "2" }, "cdktf.out-changed");
      // The cluster stack: user data changed, and devices ignore it (no update, no replacement).
      const original = readStack(path.join(f.work, "cdktf.out"), "v6fabric");
      f.cluster!.terraform.write(changed.cluster);
      try {
        expect(changes(f.cluster!.terraform.plan("changed.tfplan").plan)).toEqual([]);
      } finally {
        f.cluster!.terraform.write(original);
      }

      config.write(changed.config, clusterState());
      // The Internet tests' Local Service still holds an address of the Local pool: Calico
      // would never let the pool go, so the plan refuses, naming the setting.
      const localServices = (f.json(["get", "services", "--all-namespaces"]).items as any[]).filter((svc) => (svc.metadata.annotations?.["projectcalico.org/ipv6pools"] ?? "").includes("local-services-ipv6"));
      expect(localServices.length).toBeGreaterThan(0);
      const refused = config.terraform.run(["plan", "-input=false", "-no-color"]);
      expect([refused.status, refused.stderr.replace(/\s+/g, " ")]).toEqual([1, expect.stringContaining("LOCAL_SERVICE_ROUTES changes the Local pool: IPPool local-services-ipv6 would be replaced")]);
      // What the message asks the operator to do: release the addresses first.
      for (const svc of localServices) f.kubectl(["-n", svc.metadata.namespace, "delete", "service", svc.metadata.name]);
      await waitFor("the Local pool's addresses released", 120_000, () => (config.terraform.run(["plan", "-input=false", "-no-color"]).status === 0 ? true : undefined));
      const planned = changes(config.plan().plan);
      expect(planned).toEqual(
        expect.arrayContaining([
          ["kubernetes_manifest.globalnetworkpolicy-v6fabric-host-ingress", "update"],
          ["kubernetes_manifest.ippool-local-services-ipv6", "delete+create"],
        ]),
      );
      expect(planned.every(([, action]) => action === "update" || action === "delete+create")).toBe(true);
      config.apply();
      expectConverged(config);

      // Read back from the API server: SSH from the new prefix, a Local pool of 2 addresses.
      const policy = f.json(["get", "globalnetworkpolicies.projectcalico.org", "v6fabric-host-ingress"]);
      const sshSources = (policy.spec.ingress as { source?: { nets?: string[] }; destination?: { ports?: unknown[] } }[]).filter((r) => r.destination?.ports?.includes(22)).flatMap((r) => r.source?.nets ?? []);
      expect(sshSources).toEqual([API_ALLOWED]);
      const pool = f.json(["get", "ippools.projectcalico.org", "local-services-ipv6"]);
      expect(pool.spec.cidr).toMatch(/\/127$/);

      // Felix applies the policy: the port that dropped the Internet host's connection accepts it.
      const started = Date.now();
      await waitFor("SSH open from the admin prefix", 60_000, () => (f.internet.greet(ssh.address, ssh.port, INTERNET_HOST).stdout.includes("hello from") ? true : undefined));
      f.figures.push(`configuration stack: SSH from the new admin prefix answered ${((Date.now() - started) / 1000).toFixed(1)} s after the apply`);
    }, 900_000);
  });
}
