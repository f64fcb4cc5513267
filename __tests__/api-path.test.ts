/**
 * api-path as shipped (docs/control-plane.md, "The node-local API path"), run with a fake
 * curl (which servers answer /readyz), kubectl (the EndpointSlice) and nft, whose
 * rulesets the real `nft -c` checks.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { SAMPLE_BOOT_VALUES } from "../lib/boot-values";
import { describeWithTools, tempDir } from "./support/ignition";
import { fakeCommand, METADATA, metadataEnv, run, script, workerConfig as worker } from "./support/scripts";

describeWithTools(["nft"], "api-path", () => {
  const A = "2001:db8:0:ab00::1";
  const B = "2001:db8:0:ab00::3";
  const C = "2001:db8:0:ab00::5";
  const SELF = SAMPLE_BOOT_VALUES.nodeIpv6;

  /**
   * Fake curl (answers /readyz for the addresses in `ready`), nft (logs the ruleset it
   * is given, and checks it with the real nft's parser) and kubectl (prints `slice`, or
   * fails when it is null), the known-servers file and, when `kubeconfig`, a kubelet.conf.
   */
  function setup(opts: { known?: string; ready?: string[]; slice?: string | null; kubeconfig?: boolean; learned?: string }) {
    const dir = tempDir("api-path");
    const log = path.join(dir, "log");
    const ready = path.join(dir, "ready");
    fs.writeFileSync(ready, (opts.ready ?? []).join("\n") + "\n");
    const known = path.join(dir, "api-servers");
    if (opts.known !== undefined) fs.writeFileSync(known, opts.known);
    const learned = path.join(dir, "state", "api-servers");
    if (opts.learned !== undefined) {
      fs.mkdirSync(path.dirname(learned));
      fs.writeFileSync(learned, opts.learned);
    }
    const slice = path.join(dir, "slice");
    if (opts.slice !== null) fs.writeFileSync(slice, opts.slice ?? "");
    const kubeconfig = path.join(dir, "kubelet.conf");
    if (opts.kubeconfig) fs.writeFileSync(kubeconfig, "apiVersion: v1\nkind: Config\n");
    const ca = path.join(dir, "ca.crt");
    fs.writeFileSync(ca, "CA");
    const env = {
      V6FABRIC_API_SERVERS_FILE: known,
      V6FABRIC_API_SERVERS_LEARNED: learned,
      V6FABRIC_METADATA_ENV: metadataEnv(dir, METADATA),
      V6FABRIC_KUBECONFIG: kubeconfig,
      V6FABRIC_API_CA_FILES: `${path.join(dir, "missing.crt")} ${ca}`,
      V6FABRIC_CURL_COMMAND: fakeCommand(dir, "curl", log, `url=\${!#}; host=\${url#https://[}; host=\${host%%]*}; [ "$url" = "https://[$host]:443/readyz" ] && [ "\${@: -2:1}" = "${ca}" ] && grep -qxF "$host" "${ready}"`),
      V6FABRIC_NFT_COMMAND: fakeCommand(dir, "nft", log, `rules=$(cat); echo "$rules" > "${dir}/rules"; nft -c -f "${dir}/rules"`),
      V6FABRIC_KUBECTL_COMMAND: fakeCommand(dir, "kubectl", log, `[ -f "${slice}" ] && cat "${slice}"`),
    };
    return { env, log, learned, rules: () => fs.readFileSync(path.join(dir, "rules"), "utf8") };
  }

  /**
   * A folder with the known-servers file (`servers`, one a line) and a CA file, and the
   * environment api-path runs with there: no kubeconfig, nothing learned yet.
   */
  function standalone(prefix: string, servers: readonly string[]) {
    const dir = tempDir(prefix);
    const known = path.join(dir, "api-servers");
    fs.writeFileSync(known, servers.join("\n") + "\n");
    const ca = path.join(dir, "ca.crt");
    fs.writeFileSync(ca, "CA");
    const env = {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      V6FABRIC_API_SERVERS_FILE: known,
      V6FABRIC_API_SERVERS_LEARNED: path.join(dir, "learned"),
      V6FABRIC_METADATA_ENV: metadataEnv(dir, METADATA),
      V6FABRIC_KUBECONFIG: path.join(dir, "none"),
      V6FABRIC_API_CA_FILES: ca,
    };
    return { dir, env };
  }

  /** The addresses the ruleset's one DNAT rule sends the ClusterIP to. */
  function servers(rules: string): string[] {
    const rule = rules.split("\n").filter((l) => l.includes("dnat"));
    expect(rule).toHaveLength(1);
    expect(rule[0]).toMatch(/^ip6 daddr 2001:db8:0:ab02::1 tcp dport 443 dnat to /);
    const targets = [...rule[0].replace(/^.* dnat to /, "").matchAll(/[0-9a-f]*:[0-9a-f:]+/g)].map((m) => m[0]);
    // The host's own connections to any other server are reset: the same set, in the
    // filter hook, only packets sent in the connection's original direction.
    const reset = rules.split("\n").filter((l) => l.includes("reject"));
    expect(reset).toEqual([`meta l4proto tcp ct direction original ct original ip6 daddr 2001:db8:0:ab02::1 ct original proto-dst 443 ct reply ip6 saddr != { ${targets.join(",")} } reject with tcp reset`]);
    return targets;
  }

  it("sends the ClusterIP only to the API servers that answer /readyz, spread at random, in one checked nft transaction", () => {
    const { env, rules } = setup({ known: `${A}\n${B}\n${C}\n`, ready: [A, C] });
    const result = run(script("api-path", worker), env);
    expect([result.status, result.out]).toEqual([0, expect.stringContaining(`api-path: [2001:db8:0:ab02::1]:443 -> ${A} ${C}`)]);
    const text = rules();
    expect(servers(text)).toEqual([A, C]);
    expect(text).toContain(`dnat to numgen random mod 2 map { 0 : ${A},1 : ${C} }`);
    // Replaces the table atomically, in the output hook before kube-proxy's NAT (-100).
    expect(text.split("\n").slice(0, 5)).toEqual([
      "table ip6 v6fabric_api_path",
      "delete table ip6 v6fabric_api_path",
      "table ip6 v6fabric_api_path {",
      "chain output {",
      "type nat hook output priority -110; policy accept;",
    ]);
  });

  it("one ready server: a plain DNAT to it", () => {
    const { env, rules } = setup({ known: `${A}\n${B}\n`, ready: [B] });
    expect(run(script("api-path", worker), env).status).toBe(0);
    expect(rules()).toContain(`ip6 daddr 2001:db8:0:ab02::1 tcp dport 443 dnat to ${B}\n`);
  });

  it("none ready (the first API server still starting): every candidate, so the first to answer is used", () => {
    const { env, rules } = setup({ known: `${A}\n${B}\n`, ready: [] });
    expect(run(script("api-path", worker), env).status).toBe(0);
    expect(servers(rules())).toEqual([A, B]);
  });

  it("a control plane counts itself (its address from the metadata); a worker does not", () => {
    const cp = setup({ known: `${A}\n`, ready: [A, SELF] });
    expect(run(script("api-path"), cp.env).status).toBe(0);
    expect(servers(cp.rules()).sort()).toEqual([A, SELF].sort());
    const w = setup({ known: `${A}\n`, ready: [A, SELF] });
    expect(run(script("api-path", worker), w.env).status).toBe(0);
    expect(servers(w.rules())).toEqual([A]);
  });

  it("learns the API servers of the kubernetes EndpointSlice once the node has a kubelet.conf, and keeps them", () => {
    const { env, log, learned, rules } = setup({ known: `${A}\n`, ready: [A, B, C], kubeconfig: true, slice: `${C}\n${B}\nnot-an-address\n` });
    const result = run(script("api-path", worker), env);
    expect([result.status, result.out]).toEqual([0, expect.stringContaining(`the kubernetes EndpointSlice lists ${B} ${C}`)]);
    expect(fs.readFileSync(learned, "utf8")).toBe(`${B}\n${C}\n`);
    expect(servers(rules())).toEqual([A, B, C]);
    expect(fs.readFileSync(log, "utf8")).toMatch(/^kubectl --kubeconfig \S+kubelet.conf --request-timeout=5s -n default get endpointslices.discovery.k8s.io kubernetes -o /m);
  });

  it("keeps what it learned when the cluster does not answer, and asks nothing before the node joined", () => {
    const down = setup({ known: `${A}\n`, ready: [A, B], kubeconfig: true, slice: null, learned: `${B}\n` });
    expect(run(script("api-path", worker), down.env).status).toBe(0);
    expect(fs.readFileSync(down.learned, "utf8")).toBe(`${B}\n`);
    expect(servers(down.rules())).toEqual([A, B]);
    const before = setup({ known: `${A}\n`, ready: [A], slice: `${C}\n` });
    expect(run(script("api-path", worker), before.env).status).toBe(0);
    expect(fs.readFileSync(before.log, "utf8")).not.toContain("kubectl");
  });

  it("ignores lines that are not IPv6 addresses, and with none known leaves the ClusterIP to the network", () => {
    const { env, rules } = setup({ known: `10.0.0.1\n${A}; nft flush ruleset\n\n`, ready: [] });
    const result = run(script("api-path", worker), env);
    expect([result.status, result.out]).toEqual([0, expect.stringContaining("-> nothing (no API server known yet)")]);
    expect(rules()).not.toContain("dnat");
    expect(rules()).not.toContain("reject");
    expect(rules()).toContain("type nat hook output priority -110;");
  });

  describe("hysteresis", () => {
    /**
     * `api-path watch` every 10 ms with a fake curl that answers each server's probes from
     * its script ("ok" or "fail" per probe, the last one repeated), until every script is
     * used up. Returns, for each ruleset installed, the servers in it and how many probes
     * each server had answered by then.
     */
    function watch(probes: Record<string, string[]>, env: Record<string, string> = {}) {
      const { dir, env: base } = standalone("api-hysteresis", Object.keys(probes));
      const log = path.join(dir, "log");
      for (const [server, answers] of Object.entries(probes)) fs.writeFileSync(path.join(dir, `probes-${server}`), answers.join("\n") + "\n");
      const done = path.join(dir, "done");
      const curl = fakeCommand(dir, "curl", log, [
        'url=${!#}; host=${url#https://[}; host=${host%%]*}',
        `f="${dir}/probes-$host"; answer=$(head -n 1 "$f")`,
        '[ "$(wc -l < "$f")" -le 1 ] || sed -i 1d "$f"',
        // Once every script is down to its last answer, the test has seen what it needs.
        `if [ -z "$(find "${dir}" -name 'probes-*' -exec sh -c '[ "$(wc -l < "$1")" -gt 1 ]' _ {} \\; -print)" ]; then touch "${done}"; fi`,
        '[ "$answer" = ok ]',
      ].join("\n"));
      const nft = fakeCommand(dir, "nft", log, `rules=$(cat); echo "$rules" > "${dir}/rules"; nft -c -f "${dir}/rules"`);
      const s = script("api-path", worker);
      const child = spawnSync(
        "bash",
        ["-c", `bash "$0" watch & pid=$!; for i in $(seq 600); do [ -e "${done}" ] && break; sleep 0.01; done; sleep 0.3; kill $pid; wait $pid`, s],
        {
          encoding: "utf8",
          timeout: 20_000,
          env: {
            ...base,
            V6FABRIC_API_PROBE_INTERVAL: "0.01",
            V6FABRIC_CURL_COMMAND: curl,
            V6FABRIC_NFT_COMMAND: nft,
            ...env,
          },
        },
      );
      expect(fs.existsSync(done)).toBe(true);
      const seen: Record<string, number> = {};
      const installed: { servers: string[]; probed: Record<string, number> }[] = [];
      for (const line of fs.readFileSync(log, "utf8").trim().split("\n")) {
        const probe = /^curl .*https:\/\/\[([0-9a-f:]+)\]:443\/readyz$/.exec(line);
        if (probe) seen[probe[1]] = (seen[probe[1]] ?? 0) + 1;
        else if (line.startsWith("nft")) installed.push({ servers: [], probed: { ...seen } });
      }
      const sets = [...child.stdout.matchAll(/-> (.*)$/gm)].map((m) => m[1].split(" "));
      expect(sets).toHaveLength(installed.length);
      sets.forEach((servers, i) => (installed[i].servers = servers));
      return { installed, curlLine: fs.readFileSync(log, "utf8").split("\n").find((l) => l.startsWith("curl")) ?? "" };
    }

    it("keeps a server through 3 failed probes in a row: a slow etcd never changes the path", () => {
      const { installed } = watch({ [A]: ["ok", "fail", "fail", "fail", "ok", "fail", "fail", "fail", "ok", "ok"], [B]: ["ok"] });
      expect(installed.map((r) => r.servers)).toEqual([[A, B]]);
    });

    it("drops a server at its 4th failed probe in a row, and takes it back only after 3 successes in a row", () => {
      const { installed } = watch({ [A]: ["ok", "fail", "fail", "fail", "fail", "ok", "ok", "fail", "ok", "ok", "ok", "ok"], [B]: ["ok"] });
      expect(installed.map((r) => [r.servers, r.probed[A]])).toEqual([
        [[A, B], 1],
        [[B], 5],
        [[A, B], 11],
      ]);
    });

    it("the counts and the probe timeout are settings", () => {
      const { installed, curlLine } = watch(
        { [A]: ["ok", "fail", "ok", "fail", "fail", "ok"], [B]: ["ok"] },
        { V6FABRIC_API_DOWN_AFTER: "2", V6FABRIC_API_UP_AFTER: "1", V6FABRIC_API_PROBE_TIMEOUT: "7" },
      );
      expect(installed.map((r) => [r.servers, r.probed[A]])).toEqual([
        [[A, B], 1],
        [[B], 5],
        [[A, B], 6],
      ]);
      expect(curlLine).toContain("--max-time 7 ");
    });

    it("probes with a 3 s timeout by default", () => {
      expect(watch({ [A]: ["ok"], [B]: ["ok"] }).curlLine).toContain("--max-time 3 ");
    });
  });

  describe("the reset rule, in a real network namespace", () => {
    const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
    const tools = ["unshare", "nsenter", "ip", "python3"].every((t) => spawnSync("sh", ["-c", `command -v ${t}`]).status === 0);
    (isRoot && tools ? it : it.skip)("resets the node's own connection to a server that left the path, never its API server's answers to a pod's connection kube-proxy sent it", () => {
      const { dir, env } = standalone("api-netns", [A, B]);
      const ready = path.join(dir, "ready");
      const r = spawnSync("unshare", ["-n", "python3", path.join(__dirname, "support", "api-path-netns.py"), script("api-path"), ready], {
        encoding: "utf8",
        timeout: 60_000,
        env: {
          ...env,
          // A probe "answers" for the servers listed in the ready file; nft is the real one, in the namespace.
          V6FABRIC_CURL_COMMAND: fakeCommand(dir, "curl", path.join(dir, "log"), `url=\${!#}; host=\${url#https://[}; host=\${host%%]*}; grep -qxF "$host" "${ready}"`),
        },
      });
      expect([r.status, r.stderr]).toEqual([0, ""]);
      expect(JSON.parse(r.stdout.trim().split("\n").pop()!)).toEqual({ before: { node: "ok", pod: "ok" }, after: { node: "reset", pod: "ok" } });
    });
  });
});
