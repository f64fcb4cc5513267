/**
 * The configuration stack under the real Terraform 1.5.7 and hashicorp/kubernetes 2.38.0
 * built from its pinned source (rehearsal/config-stack.ts), offline: `validate`, then a
 * bare API server with Calico's CRDs where the real apply-addons.sh applies the init
 * node's add-on files as first boot does. The stack's first plan must only import what
 * first boot made (the same values, the same field manager: nothing to change), a
 * changed setting must change exactly the objects whose rendering changed, and the
 * objects must keep a single owner throughout.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ADDON_FIELD_MANAGER } from "../lib/cluster-config";
import { ConfigStackRehearsal, clusterOutputsState, firstBootWaitRoot } from "../rehearsal/config-stack";
import { FIRST_BOOT_WAIT_ENV, FIRST_BOOT_WAIT_EXIT, firstBootWaitScript } from "../lib/first-boot-wait";
import { Terraform } from "../rehearsal/terraform";
import { KUBERNETES_PROVIDER_SOURCE, locateSource, missingSourceAdvice } from "../rehearsal/pinned-sources";
import { KUBERNETES_PROVIDER, etcdBinary, kubernetesBinary, providerBinaryPath, terraformBinary } from "../rehearsal/tools";
import { devicesOf } from "../scripts/synthesized";
import { referencePath } from "./support/reference";
import { LocalApiServer, startLocalApiServer } from "./support/local-apiserver";
import { TerraformJson, synthesize } from "./support/synth";

const RUNNER = { CONFIG_STACK_RUNNER_PREFIX: "2001:db8:99:1::/64", API_ALLOWED_PREFIXES: "2001:db8:99::/48" };
const ADMIN = { ...RUNNER, ADMIN_ALLOWED_PREFIXES: "2001:db8:77::/48" };
const CONFIG = "v6fabric-config";
const ADDON_LIST = "/etc/v6fabric/addons.list";

const provider = providerBinaryPath({ source: KUBERNETES_PROVIDER.source, version: KUBERNETES_PROVIDER.pinned.version });
const terraformMissing = !fs.existsSync(terraformBinary())
  ? "Terraform 1.5.7 is not built: npm run tools -- --only terraform"
  : !fs.existsSync(provider)
    ? locateSource(KUBERNETES_PROVIDER_SOURCE)
      ? "hashicorp/kubernetes 2.38.0 is not built: npm run tools -- --only terraform-provider-kubernetes"
      : missingSourceAdvice(KUBERNETES_PROVIDER_SOURCE)
    : undefined;
const apiServerMissing = [kubernetesBinary("kube-apiserver"), kubernetesBinary("kubectl"), etcdBinary()].some((b) => !fs.existsSync(b))
  ? "kube-apiserver, kubectl and etcd are not built: npm run tools -- kubernetes (about 15 minutes on 2 cores)"
  : undefined;

if (terraformMissing) console.warn(`SKIPPED the configuration stack under Terraform: ${terraformMissing}`);
else if (apiServerMissing) console.warn(`SKIPPED the configuration stack's plans against an API server: ${apiServerMissing}`);

const work = fs.mkdtempSync(path.join(os.tmpdir(), "v6fabric-test-config-stack-"));
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

/** The init node's inline add-on files, in its list's order (downloaded ones, Calico's CRDs and operator, have no text). */
function firstBootFiles(stacks: Record<string, TerraformJson>): { path: string; text: string }[] {
  const ignition = devicesOf(stacks as never)
    .flatMap((d) => (d.userData && "ignition" in d.userData ? [d.userData.ignition] : []))
    .find((i) => i.files.some((f) => f.path === ADDON_LIST))!;
  const listed = ignition.files.find((f) => f.path === ADDON_LIST)!.text!.split("\n").filter(Boolean);
  return listed.flatMap((p) => {
    const text = ignition.files.find((f) => f.path === p)?.text;
    return text === undefined ? [] : [{ path: p, text }];
  });
}

type Change = { address: string; change: { actions: readonly string[]; importing?: { id: string } } };
const manifestChanges = (plan: { resource_changes?: readonly Change[] }) => (plan.resource_changes ?? []).filter((c) => c.address.startsWith("kubernetes_manifest."));

(terraformMissing ? describe.skip : describe)("the configuration stack under the real Terraform and kubernetes provider", () => {
  const synth = synthesize(RUNNER);
  const stack = synth.stacks[CONFIG] as Record<string, unknown>;

  test("terraform validate accepts it with the provider from the mirror", () => {
    const state = path.join(work, "unused-cluster.tfstate");
    fs.writeFileSync(state, clusterOutputsState({}));
    const config = new ConfigStackRehearsal(stack, path.join(work, "validate"), state);
    config.init();
    config.validate();
    // The lock file names the provider the mirror holds: the one built from the pinned source.
    expect(fs.readFileSync(path.join(work, "validate", ".terraform.lock.hcl"), "utf8")).toMatch(new RegExp(`/hashicorp/kubernetes" \\{\\n  version     = "${KUBERNETES_PROVIDER.pinned.version}"`));
  }, 120_000);

  (apiServerMissing ? describe.skip : describe)("after first boot applied the same objects to an API server", () => {
    let api: LocalApiServer;
    let config: ConfigStackRehearsal;
    let clusterState = "";
    /** The cluster stack's first-boot wait, run by the real Terraform from before first boot. */
    const wait = { runningBeforeFirstBoot: false, status: -1, output: "", secondsAfterFirstBoot: -1 };
    const names = synth.stacks[CONFIG].resource!.kubernetes_manifest;

    beforeAll(async () => {
      api = await startLocalApiServer(path.join(work, "apiserver"));
      // What the init node's first two manifests install: Calico's v3 CRDs and the operator's.
      for (const crds of [referencePath("upstream", "calico-v3.32.1", "operator-crds.yaml"), referencePath("upstream", "calico-v3.32.1", "v3_projectcalico_org.yaml")]) {
        const applied = api.kubectl(["apply", "--server-side", "-f", crds]);
        if (applied.status !== 0) throw new Error(applied.stderr);
      }
      api.kubectl(["wait", "--for=condition=Established", "crd", "--all", "--timeout=60s"]);
      // The cluster stack's last step starts before first boot has applied anything.
      const waitDir = path.join(work, "first-boot-wait");
      fs.mkdirSync(waitDir, { recursive: true });
      const waitRoot = firstBootWaitRoot(synth.stacks.v6fabric as Record<string, unknown>, { apiUrl: api.url, caPem: api.caPem, clientCertPem: api.clientCertPem, clientKeyPem: api.clientKeyPem, waitSeconds: 300 });
      fs.writeFileSync(path.join(waitDir, "main.tf.json"), JSON.stringify(waitRoot));
      const waitTerraform = new Terraform(waitDir);
      waitTerraform.must(["init", "-input=false", "-no-color"]);
      const waiting = waitTerraform.start(["apply", "-auto-approve", "-input=false", "-no-color"]);
      let ended = false;
      void waiting.result.then(() => (ended = true));
      // Longer than one round of its requests (10 s apart).
      await new Promise((r) => setTimeout(r, 15_000));
      wait.runningBeforeFirstBoot = !ended;
      // First boot: the shipped script, with the init node's files.
      const files = path.join(work, "first-boot");
      const list = firstBootFiles(synth.stacks).map((f, i) => {
        const file = path.join(files, `${i}-${path.basename(f.path)}`);
        fs.mkdirSync(files, { recursive: true });
        fs.writeFileSync(file, f.text);
        return file;
      });
      fs.writeFileSync(path.join(files, "addons.list"), `${list.join("\n")}\n`);
      const script = path.join(__dirname, "..", "ignition", "scripts", "apply-addons.sh");
      const env = { ...process.env, ADDON_LIST: path.join(files, "addons.list"), V6FABRIC_STATE_DIR: path.join(files, "state"), V6FABRIC_KUBECONFIG: api.kubeconfig, V6FABRIC_KUBECTL: kubernetesBinary("kubectl"), V6FABRIC_APPLY_ATTEMPTS: "5", V6FABRIC_APPLY_DELAY: "2" };
      const firstBoot = spawnSync("bash", [script], { env, encoding: "utf8" });
      if (firstBoot.status !== 0) throw new Error(`apply-addons.sh failed:\n${firstBoot.stdout}${firstBoot.stderr}`);
      const firstBootDone = Date.now();
      const timeout = setTimeout(() => waiting.stop(), 60_000);
      const waited = await waiting.result;
      clearTimeout(timeout);
      wait.status = waited.status;
      wait.output = waited.stdout + waited.stderr;
      wait.secondsAfterFirstBoot = (Date.now() - firstBootDone) / 1000;
      clusterState = path.join(work, "cluster.tfstate");
      fs.writeFileSync(
        clusterState,
        clusterOutputsState({ api_server_url: { value: api.url }, cluster_ca_certificate: { value: api.caPem }, admin_kubeconfig: { value: api.kubeconfigText, sensitive: true } }),
        { mode: 0o600 },
      );
      config = new ConfigStackRehearsal(stack, path.join(work, "plan"), clusterState);
      config.init();
    }, 480_000);

    afterAll(async () => {
      await api?.stop();
    }, 60_000);

    test("the cluster stack's first apply waits until first boot applied every object this stack imports, and prints no secret", () => {
      console.log(`first-boot wait: ended ${wait.secondsAfterFirstBoot.toFixed(1)} s after first boot's add-ons were applied`);
      expect(wait.runningBeforeFirstBoot).toBe(true);
      expect([wait.status, wait.output]).toEqual([0, expect.stringContaining("Creation complete")]);
      // One round of requests is 10 s apart, plus the requests themselves.
      expect(wait.secondsAfterFirstBoot).toBeLessThan(20);
      // The admin key is sensitive, so Terraform shows none of the command's output.
      expect(wait.output).toContain("output suppressed due to sensitive value in config");
      expect(wait.output).not.toContain("PRIVATE KEY");
      // The plan that follows can now import every object.
      expect(config.plan().plan.resource_changes?.filter((c) => c.address.startsWith("kubernetes_manifest.")).length).toBe(Object.keys(names).length);
    }, 120_000);

    test("the wait fails with its own exit code when an object never appears or the API server does not answer", () => {
      const run = (paths: string[], apiUrl: string) =>
        spawnSync("/bin/sh", ["-c", firstBootWaitScript(paths)], {
          encoding: "utf8",
          env: { PATH: process.env.PATH, [FIRST_BOOT_WAIT_ENV.apiUrl]: apiUrl, [FIRST_BOOT_WAIT_ENV.caPem]: api.caPem, [FIRST_BOOT_WAIT_ENV.clientCertPem]: api.clientCertPem, [FIRST_BOOT_WAIT_ENV.clientKeyPem]: api.clientKeyPem, [FIRST_BOOT_WAIT_ENV.waitSeconds]: "0" },
        });
      const missing = run(["/api/v1/namespaces/kube-system/configmaps/coredns", "/api/v1/namespaces/default/configmaps/never-applied"], api.url);
      expect([missing.status, missing.stderr]).toEqual([FIRST_BOOT_WAIT_EXIT.objectMissing, expect.stringContaining("/api/v1/namespaces/default/configmaps/never-applied is missing")]);
      const closed = run(["/api/v1/namespaces/kube-system/configmaps/coredns"], "https://[::1]:9");
      expect([closed.status, closed.stderr]).toEqual([FIRST_BOOT_WAIT_EXIT.apiUnreachable, expect.stringContaining("did not answer")]);
      expect(`${missing.stdout}${missing.stderr}${closed.stdout}${closed.stderr}`).not.toContain("PRIVATE KEY");
    }, 60_000);

    const managers = (kind: string, name: string) => {
      const got = api.kubectl(["get", kind, name, "--show-managed-fields", "-o", "json"]);
      expect(got.stderr).toBe("");
      return (JSON.parse(got.stdout).metadata.managedFields as { manager: string; operation: string }[]).map((m) => `${m.manager}/${m.operation}`);
    };

    /**
     * Each kept object as the API server holds it, by construct ID, without what any
     * write changes (resourceVersion, managedFields): its values, labels and generation.
     */
    const storedObjects = () =>
      Object.fromEntries(
        Object.entries(names).map(([id, body]) => {
          const { apiVersion, kind, metadata } = body.manifest as { apiVersion: string; kind: string; metadata: { name: string; namespace?: string } };
          const group = apiVersion.includes("/") ? `.${apiVersion.split("/")[0]}` : "";
          const got = api.kubectl(["get", `${kind.toLowerCase()}${group}`, metadata.name, ...(metadata.namespace ? ["-n", metadata.namespace] : []), "-o", "json"]);
          expect([id, got.stderr]).toEqual([id, ""]);
          const object = JSON.parse(got.stdout);
          delete object.metadata.resourceVersion;
          delete object.metadata.managedFields;
          return [id, object];
        }),
      );

    test("the first plan imports every object first boot made, and applying it changes none of their values", () => {
      const changes = manifestChanges(config.plan().plan);
      expect(changes.map((c) => c.address).sort()).toEqual(Object.keys(names).map((id) => `kubernetes_manifest.${id}`).sort());
      // An imported kubernetes_manifest has no `manifest` in state yet (the provider's
      // import.go), so Terraform plans an update of its state. The provider's apply also
      // sends the values the API server defaulted (its plan.go takes them from the prior
      // object), so that manager then owns them too: the same values, nothing changed.
      for (const c of changes) expect([c.address, typeof c.change.importing?.id, ["no-op", "update"]]).toEqual([c.address, "string", expect.arrayContaining([...c.change.actions])]);
      const before = storedObjects();
      config.apply();
      expect(storedObjects()).toEqual(before);
      expect(config.changesPlanned()).toBe(false);
      // One owner before and after the handover: first boot's manager, applying.
      expect(managers("globalnetworkpolicies.projectcalico.org", "v6fabric-host-ingress")).toEqual([`${ADDON_FIELD_MANAGER}/Apply`]);
      expect(managers("bgpconfigurations.projectcalico.org", "default")).toEqual([`${ADDON_FIELD_MANAGER}/Apply`]);
    }, 480_000);

    test("a changed setting updates exactly the objects whose rendering changed, in the API server, with the same owner", () => {
      const changed = synthesize(ADMIN).stacks[CONFIG];
      const before = synth.stacks[CONFIG].resource!.kubernetes_manifest;
      const after = changed.resource!.kubernetes_manifest;
      expect(Object.keys(after).sort()).toEqual(Object.keys(before).sort());
      const differing = Object.keys(after).filter((id) => JSON.stringify(after[id].manifest) !== JSON.stringify(before[id].manifest));
      // SSH opens in the host policy and in Felix's failsafe ports (lib/policies.ts).
      expect(differing.length).toBeGreaterThan(0);
      config.write(changed as Record<string, unknown>, clusterState);
      const changes = manifestChanges(config.plan().plan).filter((c) => c.change.actions.join() !== "no-op");
      expect(changes.map((c) => [c.address, c.change.actions])).toEqual(differing.sort().map((id) => [`kubernetes_manifest.${id}`, ["update"]]));
      config.apply();
      const policy = JSON.parse(api.kubectl(["get", "globalnetworkpolicies.projectcalico.org", "v6fabric-host-ingress", "-o", "json"]).stdout);
      const ssh = (policy.spec.ingress as { source?: { nets?: string[] }; destination?: { ports?: unknown[] } }[]).filter((r) => r.destination?.ports?.includes(22));
      expect(ssh.flatMap((r) => r.source?.nets ?? [])).toEqual(["2001:db8:77::/48"]);
      expect(managers("globalnetworkpolicies.projectcalico.org", "v6fabric-host-ingress")).toEqual([`${ADDON_FIELD_MANAGER}/Apply`]);
      expect(config.changesPlanned()).toBe(false);
    }, 480_000);

    test("a setting that changes an IPPool's CIDR replaces the pool (the CRD refuses the update); the rest is updated", () => {
      const before = synthesize(ADMIN).stacks[CONFIG].resource!.kubernetes_manifest;
      const changed = synthesize({ ...ADMIN, LOCAL_SERVICE_ROUTES: "2" }).stacks[CONFIG];
      const after = changed.resource!.kubernetes_manifest;
      const differing = Object.keys(after).filter((id) => JSON.stringify(after[id].manifest) !== JSON.stringify(before[id].manifest));
      const pool = "ippool-local-services-ipv6";
      expect(differing).toContain(pool);
      // What an update would meet: the v3 CRD's rule on the CIDR.
      const update = api.kubectl(["apply", "--server-side", "--dry-run=server", `--field-manager=${ADDON_FIELD_MANAGER}`, "-f", "-"], JSON.stringify(after[pool].manifest));
      expect([update.status === 0, update.stderr]).toEqual([false, expect.stringContaining("CIDR cannot be changed")]);
      config.write(changed as Record<string, unknown>, clusterState);
      // While a Service holds an address of the pool (Calico's IPAM block with an
      // allocation), the plan refuses: Calico would never let the pool go.
      const block = { apiVersion: "projectcalico.org/v3", kind: "IPAMBlock", metadata: { name: "rehearsal-local-block" }, spec: { cidr: before[pool].manifest.spec.cidr, affinity: "virtual:load-balancer", allocations: [0, null, null, null], unallocated: [1, 2, 3], attributes: [{ handle_id: "rehearsal-service" }], strictAffinity: false } };
      const created = api.kubectl(["create", "-f", "-"], JSON.stringify(block));
      expect([created.status, created.stderr]).toEqual([0, ""]);
      const refused = config.terraform.run(["plan", "-input=false", "-no-color"]);
      expect(refused.status).toBe(1);
      expect(refused.stderr.replace(/\s+/g, " ")).toContain(`LOCAL_SERVICE_ROUTES changes the Local pool: IPPool local-services-ipv6 would be replaced (${before[pool].manifest.spec.cidr} becomes ${after[pool].manifest.spec.cidr}), but 1 of its blocks hold addresses in use.`);
      expect(api.kubectl(["delete", "ipamblocks.projectcalico.org", "rehearsal-local-block"]).status).toBe(0);
      const changes = manifestChanges(config.plan().plan).filter((c) => c.change.actions.join() !== "no-op");
      expect(changes.map((c) => [c.address, c.change.actions])).toEqual(
        differing.sort().map((id) => [`kubernetes_manifest.${id}`, id === pool ? ["delete", "create"] : ["update"]]),
      );
      config.apply();
      const stored = JSON.parse(api.kubectl(["get", "ippools.projectcalico.org", "local-services-ipv6", "-o", "json"]).stdout);
      expect(stored.spec).toMatchObject({ cidr: after[pool].manifest.spec.cidr, blockSize: after[pool].manifest.spec.blockSize });
      expect(stored.spec.cidr).not.toBe(before[pool].manifest.spec.cidr);
      expect(config.changesPlanned()).toBe(false);
    }, 480_000);

    test("the BGP password switched on later (CONFIG_STACK_ADOPT=false): its objects are created, and a new password reaches the Secret", () => {
      const settings = { ...ADMIN, LOCAL_SERVICE_ROUTES: "2", METAL_BGP_MD5_ENABLED: "true", CONFIG_STACK_ADOPT: "false" };
      const before = synthesize({ ...ADMIN, LOCAL_SERVICE_ROUTES: "2" }).stacks[CONFIG].resource!.kubernetes_manifest;
      const changed = synthesize(settings).stacks[CONFIG];
      const after = changed.resource!.kubernetes_manifest;
      // The operator makes calico-system in a real cluster.
      api.kubectl(["create", "namespace", "calico-system"]);
      const withPassword = (password: string) => new ConfigStackRehearsal(changed as Record<string, unknown>, path.join(work, "plan"), clusterState, { ...process.env, TF_VAR_metal_bgp_md5_password: password });
      const first = withPassword("rehearsal-password-1");
      const changes = manifestChanges(first.plan().plan).filter((c) => c.change.actions.join() !== "no-op");
      const added = Object.keys(after).filter((id) => !before[id]);
      const updated = Object.keys(after).filter((id) => before[id] && JSON.stringify(after[id].manifest) !== JSON.stringify(before[id].manifest));
      expect(added.sort()).toEqual(["role-calico-system-metal-bgp-password-reader", "rolebinding-calico-system-metal-bgp-password-reader", "secret-calico-system-metal-bgp-password"]);
      expect(changes.map((c) => [c.address, c.change.actions]).sort()).toEqual(
        [...added.map((id) => [`kubernetes_manifest.${id}`, ["create"]]), ...updated.map((id) => [`kubernetes_manifest.${id}`, ["update"]])].sort(),
      );
      first.apply();
      const secretPassword = () => Buffer.from(JSON.parse(api.kubectl(["get", "secret", "-n", "calico-system", "metal-bgp-password", "-o", "json"]).stdout).data.password, "base64").toString("utf8");
      expect(secretPassword()).toBe("rehearsal-password-1");
      expect(first.changesPlanned()).toBe(false);
      const second = withPassword("rehearsal-password-2");
      const rotated = manifestChanges(second.plan().plan).filter((c) => c.change.actions.join() !== "no-op");
      expect(rotated.map((c) => [c.address, c.change.actions])).toEqual([["kubernetes_manifest.secret-calico-system-metal-bgp-password", ["update"]]]);
      second.apply();
      expect(secretPassword()).toBe("rehearsal-password-2");
    }, 480_000);
  });
});
