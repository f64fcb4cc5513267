/**
 * service-announcement as shipped (docs/bgp-fabric.md, "When a node announces the Service
 * ranges"), run with a fake kubectl and curl.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { NODE_PATHS, NODE_UNITS, renderNodeIgnition } from "../ignition";
import { fixtureInput } from "./support/ignition-fixtures";
import { IgnConfig, tempDir, unit, unitValues } from "./support/ignition";
import { fakeCommand, run, script } from "./support/scripts";

describe("service-announcement", () => {
  const LABEL = "node.kubernetes.io/exclude-from-external-load-balancers";
  /** Fake kubectl (prints `label` for the node's label, fails `get` when null) and curl (kube-proxy healthy or not). */
  function setup(opts: { label: string | null; healthy: boolean; joined?: boolean }) {
    const dir = tempDir("announce");
    const log = path.join(dir, "log");
    const kubeconfig = path.join(dir, "kubelet.conf");
    if (opts.joined ?? true) fs.writeFileSync(kubeconfig, "apiVersion: v1\nkind: Config\n");
    const getBody = opts.label === null ? 'echo "connection refused" >&2; exit 1' : `echo -n "${opts.label}"`;
    // kubectl is found on PATH, by its default name, as on a node.
    fakeCommand(dir, "kubectl", log, `if [ "$4" = get ]; then ${getBody}; fi`);
    const env = {
      PATH: `${dir}:${process.env.PATH ?? "/usr/bin:/bin"}`,
      V6FABRIC_KUBECONFIG: kubeconfig,
      V6FABRIC_CURL_COMMAND: fakeCommand(dir, "curl", log, `exit ${opts.healthy ? 0 : 22}`),
    };
    const calls = () => (fs.existsSync(log) ? fs.readFileSync(log, "utf8").trim().split("\n") : []).filter((l) => l.startsWith("kubectl"));
    return { env, calls, kubeconfig };
  }
  const get = (kubeconfig: string) => `kubectl --kubeconfig ${kubeconfig} --request-timeout=10s get node v6fabric-cp-1 -o go-template={{index .metadata.labels "${LABEL}"}}`;

  it("removes the label once kube-proxy answers, so the node announces the Service ranges", () => {
    const { env, calls, kubeconfig } = setup({ label: "true", healthy: true });
    const result = run(script("service-announcement"), env);
    expect([result.status, result.out]).toEqual([0, expect.stringContaining("kube-proxy is healthy; v6fabric-cp-1 announces the Service ranges")]);
    expect(calls()).toEqual([get(kubeconfig), `kubectl --kubeconfig ${kubeconfig} --request-timeout=10s label node v6fabric-cp-1 ${LABEL}-`]);
  });

  it("labels the node when kube-proxy stops answering, so Calico withdraws its Service routes", () => {
    const { env, calls, kubeconfig } = setup({ label: "<no value>", healthy: false });
    const result = run(script("service-announcement"), env);
    expect([result.status, result.out]).toEqual([0, expect.stringContaining("withdraws the Service ranges")]);
    expect(calls()).toEqual([get(kubeconfig), `kubectl --kubeconfig ${kubeconfig} --request-timeout=10s label node v6fabric-cp-1 ${LABEL}=true --overwrite`]);
  });

  it.each([
    ["healthy and announcing", "<no value>", true],
    ["unhealthy and withdrawn", "true", false],
  ])("changes nothing when %s", (_name, label, healthy) => {
    const { env, calls, kubeconfig } = setup({ label, healthy });
    expect(run(script("service-announcement"), env).status).toBe(0);
    expect(calls()).toEqual([get(kubeconfig)]);
  });

  it("does nothing before the node has joined, and fails (the timer runs it again) when the API does not answer", () => {
    const before = setup({ label: "true", healthy: true, joined: false });
    expect(run(script("service-announcement"), before.env).status).toBe(0);
    expect(before.calls()).toEqual([]);
    const down = setup({ label: null, healthy: false });
    const result = run(script("service-announcement"), down.env);
    expect(result.status).not.toBe(0);
    expect(down.calls()).toEqual([get(down.kubeconfig)]);
  });
});

describe("service-announcement withdraw: the node withdraws its Service routes at boot and at shutdown", () => {
  const LABEL = "node.kubernetes.io/exclude-from-external-load-balancers";
  function setup(opts: { label: string; joined?: boolean; apiAnswers?: boolean }) {
    const dir = tempDir("withdraw");
    const log = path.join(dir, "log");
    const kubeconfig = path.join(dir, "kubelet.conf");
    if (opts.joined ?? true) fs.writeFileSync(kubeconfig, "apiVersion: v1\nkind: Config\n");
    const fail = opts.apiAnswers === false ? 'echo "connection refused" >&2; exit 1' : "";
    fakeCommand(dir, "kubectl", log, `${fail}\nif [ "$4" = get ]; then echo -n "${opts.label}"; fi`);
    const env = {
      PATH: `${dir}:${process.env.PATH ?? "/usr/bin:/bin"}`,
      V6FABRIC_KUBECONFIG: kubeconfig,
      // kube-proxy answers: a withdrawal does not depend on it.
      V6FABRIC_CURL_COMMAND: fakeCommand(dir, "curl", log, "exit 0"),
    };
    const calls = () => (fs.existsSync(log) ? fs.readFileSync(log, "utf8").trim().split("\n") : []);
    return { env, calls, kubeconfig };
  }

  it.each([["announcing (no label)", "<no value>"], ["already withdrawn", "true"], ["kubeadm's empty value on a control plane", ""]])(
    "sets the label to true whatever kube-proxy says, when %s",
    (_name, label) => {
      const { env, calls, kubeconfig } = setup({ label });
      const result = run(script("service-announcement"), env, ["withdraw"]);
      expect([result.status, result.out]).toEqual([0, expect.stringContaining("v6fabric-cp-1 withdraws the Service ranges")]);
      expect(calls()).toEqual([`kubectl --kubeconfig ${kubeconfig} --request-timeout=10s label node v6fabric-cp-1 ${LABEL}=true --overwrite`]);
    },
  );

  it("does nothing before the node has joined (the kubelet registers it withdrawn), and fails when no API server answers", () => {
    const before = setup({ label: "", joined: false });
    expect(run(script("service-announcement"), before.env, ["withdraw"]).status).toBe(0);
    expect(before.calls()).toEqual([]);
    const down = setup({ label: "", apiAnswers: false });
    expect(run(script("service-announcement"), down.env, ["withdraw"]).status).not.toBe(0);
  });
});

describe("the withdrawal units", () => {
  const configs = (["init", "control-plane", "worker"] as const).map((role) => [role, JSON.parse(JSON.stringify(renderNodeIgnition(fixtureInput(role)))) as IgnConfig] as const);

  it.each(configs)("%s: at boot, before the kubelet starts and after the node's API path is up", (_role, config) => {
    const u = unit(config, NODE_UNITS.withdrawAtBoot);
    expect(u.enabled).toBe(true);
    const text = u.contents ?? "";
    expect(unitValues(text, "Unit", "Before")).toContain("kubelet.service");
    expect(unitValues(text, "Unit", "After")).toEqual(expect.arrayContaining([NODE_UNITS.apiPath, "network-online.target"]));
    // Ordering only: if no API server answers, the kubelet starts anyway (the control planes' API servers need it).
    expect([...unitValues(text, "Unit", "Requires"), ...unitValues(text, "Unit", "BindsTo"), ...unitValues(text, "Unit", "RequiredBy")]).toEqual([]);
    expect(unitValues(text, "Service", "ExecStart")).toEqual([`${NODE_PATHS.scriptDir}/service-announcement`, "withdraw"]);
    expect(unitValues(text, "Service", "TimeoutStartSec")).toEqual(["30"]);
  });

  it.each(configs)("%s: at shutdown, stopped before the kubelet, containerd and the API path (units stop in reverse start order)", (_role, config) => {
    const u = unit(config, NODE_UNITS.withdrawAtShutdown);
    expect(u.enabled).toBe(true);
    const text = u.contents ?? "";
    expect(unitValues(text, "Unit", "After")).toEqual(expect.arrayContaining(["kubelet.service", "containerd.service", NODE_UNITS.apiPath]));
    expect(unitValues(text, "Unit", "Before")).toEqual([]);
    // Active from boot without running anything, so that stopping it runs the withdrawal.
    expect([unitValues(text, "Service", "Type"), unitValues(text, "Service", "RemainAfterExit"), unitValues(text, "Service", "ExecStart")]).toEqual([["oneshot"], ["yes"], []]);
    expect(unitValues(text, "Service", "ExecStop").slice(0, 2)).toEqual([`${NODE_PATHS.scriptDir}/service-announcement`, "withdraw"]);
  });
});
