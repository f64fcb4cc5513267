/**
 * renderNodeIgnition: composition, file encoding, the values that matter on a node,
 * input validation, and ignition-validate on every role (with a kubeadm fixture; the
 * synthesized app is checked in ignition-synth.test.ts).
 */
import { BootRole, NODE_PATHS, NODE_UNITS, NodeIgnitionInput, packUserData, renderNodeIgnition, toUserData, unpackUserData } from "../ignition";
import { composeConfig } from "../ignition/compose";
import { base64Source, textResource, textSource } from "../ignition/node-files";
import { renderTemplate } from "../ignition/templates";
import { escapeTerraformTemplate } from "../ignition/terraform-escape";
import { BOOT_VALUES } from "../lib/boot-values";
import { DEFAULT_KUBERNETES_VERSION, KUBERNETES_RELEASES } from "../lib/versions";
import { ADDON, BASE64_NODE_KEY, BASE64_TOKEN, fixtureInput, kubeadmFixture, TOKEN } from "./support/ignition-fixtures";
import { decodeDataUrl, describeWithTools, file, fileText, files, IgnConfig, ignitionValidate, unit, unitValues, unpackMerges } from "./support/ignition";
import { REF_PLACEHOLDERS, resolveTerraformRefs } from "./support/terraform-refs";

const ROLES: BootRole[] = ["init", "control-plane", "worker"];

function render(input: NodeIgnitionInput): IgnConfig {
  return JSON.parse(JSON.stringify(renderNodeIgnition(input))) as IgnConfig;
}

/** What a node receives: user data after Terraform substituted its references. */
function applied(input: NodeIgnitionInput): IgnConfig {
  const cdktfTokens = toUserData(renderNodeIgnition(input))
    .split(BASE64_NODE_KEY)
    .join("${base64gzip(tls_private_key.node.private_key_pem)}")
    .split(BASE64_TOKEN)
    .join("${base64encode(tls_private_key.ca.private_key_pem)}");
  return unpackMerges(JSON.parse(resolveTerraformRefs(cdktfTokens).text) as IgnConfig);
}

describe("composition: one base for every node, role parts added", () => {
  const configs = Object.fromEntries(ROLES.map((r) => [r, render(fixtureInput(r))])) as Record<BootRole, IgnConfig>;
  const basePaths = ["/etc/hostname", "/opt/bin/kubeadm", "/opt/bin/kubelet", "/opt/bin/kubectl", "/etc/kubernetes/resolv.conf", "/etc/flatcar/update.conf"];

  it.each(ROLES)("%s has the base files and units", (role) => {
    const paths = files(configs[role]).map((f) => f.path);
    for (const p of basePaths) expect(paths).toContain(p);
    for (const u of ["containerd.service", "kubelet.service", "locksmithd.service", NODE_UNITS.bootValues, NODE_UNITS.bgpPeerRoutes, NODE_UNITS.kubeadm]) {
      expect(unit(configs[role], u)).toBeDefined();
    }
  });

  it("the base is identical across roles (same bytes for every shared file and unit)", () => {
    const shared = (c: IgnConfig) => ({
      files: files(c).filter((f) => basePaths.includes(f.path) && f.path !== "/etc/hostname"),
      kubelet: unit(c, "kubelet.service"),
      kubeadm: unit(c, NODE_UNITS.kubeadm).contents,
    });
    expect(shared(configs["control-plane"])).toEqual(shared(configs.init));
    expect(shared(configs.worker)).toEqual(shared(configs.init));
  });

  it("the role sets the kubeadm command in a drop-in; only init applies add-ons", () => {
    const command = (c: IgnConfig) => unitValues(unit(c, NODE_UNITS.kubeadm).dropins?.[0].contents ?? "", "Service", "Environment");
    expect(command(configs.init)).toEqual(["KUBEADM_COMMAND=init"]);
    expect(command(configs["control-plane"])).toEqual(["KUBEADM_COMMAND=join"]);
    expect(command(configs.worker)).toEqual(["KUBEADM_COMMAND=join"]);
    expect(unit(configs.init, NODE_UNITS.addons).enabled).toBe(true);
    expect(fileText(configs.init, NODE_PATHS.addonList)).toBe(`${ADDON}\n`);
    for (const role of ["control-plane", "worker"] as const) {
      expect(configs[role].systemd?.units?.map((u) => u.name)).not.toContain(NODE_UNITS.addons);
      expect(files(configs[role]).map((f) => f.path)).not.toContain(NODE_PATHS.addonList);
    }
  });

  it("refuses a path defined twice and a unit whose contents two parts set; merges drop-ins", () => {
    const f = { path: "/etc/x", contents: { source: "data:," } };
    expect(() => composeConfig({ files: [f] }, { files: [f] })).toThrow("path /etc/x is defined twice");
    expect(() => composeConfig({ units: [{ name: "a.service", contents: "x" }] }, { units: [{ name: "a.service", contents: "y" }] })).toThrow(
      "unit a.service: contents is set by two parts",
    );
    const merged = composeConfig(
      { units: [{ name: "a.service", enabled: true, contents: "x", dropins: [{ name: "1.conf", contents: "1" }] }] },
      { units: [{ name: "a.service", dropins: [{ name: "2.conf", contents: "2" }] }] },
    );
    expect(merged.systemd?.units).toEqual([
      { name: "a.service", enabled: true, contents: "x", dropins: [{ name: "1.conf", contents: "1" }, { name: "2.conf", contents: "2" }] },
    ]);
  });
});

describe("NodeFile encoding", () => {
  it("text without tokens becomes a percent-encoded data URL of exactly that text, escaping only what Ignition's parser refuses", () => {
    const text = "line one\nwith ${shell} and %{x}, 100% \"quoted\" <a|b> [c] `d` #e ^f \\g and ünïcode\n";
    const source = textSource(text);
    expect(source.startsWith("data:,")).toBe(true);
    expect(decodeDataUrl(source).toString()).toBe(text);
    // RFC 2396 delims and unwise characters, controls, space, non-ASCII and % itself are escaped; the rest stays readable.
    expect(source.slice("data:,".length)).not.toMatch(/[\x00-\x20\x7f-\uffff<>#"{}|\\^[\]`]/);
    expect(source).toContain("with%20$%7Bshell%7D%20and%20%25%7Bx%7D,%20100%25");
    expect(textSource("a=b;c/d?e:f@g&h+i$j,k-l_m.n!o~p*q'r(s)t")).toBe("data:,a=b;c/d?e:f@g&h+i$j,k-l_m.n!o~p*q'r(s)t");
  });

  it("long text is not compressed file by file: the boot config is gzip'd as a whole (ignition/user-data.ts)", () => {
    const text = "net.ipv6.conf.all.forwarding = 1\n".repeat(40);
    const resource = textResource(text);
    expect(resource).toEqual({ source: textSource(text) });
    expect(decodeDataUrl(resource.source, resource.compression).toString()).toBe(text);
  });

  it("text with a cdktf token is refused: secrets travel as whole base64 files", () => {
    expect(() => textSource(`token: "${TOKEN}"\n`)).toThrow("pass the whole file as `base64`");
    expect(() => textResource(`token: "${TOKEN}"\n${"x".repeat(400)}`)).toThrow("pass the whole file as `base64`");
  });

  it("a base64 file is a data URL around the raw expression; a remote file keeps its hash", () => {
    expect(base64Source(BASE64_TOKEN)).toBe(`data:;base64,${BASE64_TOKEN}`);
    const gz = render({ ...fixtureInput("worker"), files: [...fixtureInput("worker").files, { path: "/etc/x.pem", mode: 0o600, base64: BASE64_TOKEN, gzip: true }] });
    expect(file(gz, "/etc/x.pem").contents).toEqual({ source: `data:;base64,${BASE64_TOKEN}`, compression: "gzip" });
    expect(file(gz, "/etc/kubernetes/discovery/node.key").contents).toEqual({ source: `data:;base64,${BASE64_NODE_KEY}` });
    const release = KUBERNETES_RELEASES[DEFAULT_KUBERNETES_VERSION];
    const worker = fixtureInput("worker");
    const config = render({ ...worker, files: [...worker.files, { path: "/opt/x", mode: 0o755, remote: release.kubectl }] });
    expect(file(config, "/opt/x").contents).toEqual({ source: release.kubectl.url, verification: { hash: release.kubectl.hash } });
  });

  it("files with boot placeholders go to the template tree; others to their path", () => {
    const config = render(fixtureInput("init"));
    const paths = files(config).map((f) => f.path);
    expect(paths).toContain(`${NODE_PATHS.templateDir}${NODE_PATHS.kubeadmConfig}`);
    expect(paths).toContain(`${NODE_PATHS.templateDir}${ADDON}`);
    expect(paths).not.toContain(NODE_PATHS.kubeadmConfig);
    expect(paths).toContain("/etc/kubernetes/discovery/kubeconfig");
    expect(file(config, `${NODE_PATHS.templateDir}${NODE_PATHS.kubeadmConfig}`).mode).toBe(0o600);
  });

  it("after Terraform's substitution, every inline file of every role decodes, with the values in place", () => {
    for (const role of ROLES) {
      const config = applied(fixtureInput(role));
      for (const f of files(config)) {
        if (!f.contents?.source.startsWith("data:")) continue;
        expect(() => decodeDataUrl(f.contents!.source, f.contents!.compression)).not.toThrow();
      }
      const kubeadm = fileText(config, `${NODE_PATHS.templateDir}${NODE_PATHS.kubeadmConfig}`);
      expect(kubeadm).toBe(kubeadmFixture(role));
      expect(kubeadm).toContain(BOOT_VALUES.nodeIpv6);
      if (role !== "init") expect(file(config, "/etc/kubernetes/discovery/node.key").mode).toBe(0o600);
      if (role !== "worker") expect(fileText(config, "/etc/kubernetes/pki/ca.key")).toBe(Buffer.from(REF_PLACEHOLDERS.base64, "base64").toString());
    }
  });
});

describe("packing: the boot config gzip'd as one merged config, the apply-time files outside", () => {
  const config = renderNodeIgnition(fixtureInput("control-plane"));
  const packed = JSON.parse(JSON.stringify(packUserData(config))) as IgnConfig;
  const merge = packed.ignition.config?.merge ?? [];

  it("merges exactly one gzip'd data URL; the user data's own files are those holding a Terraform reference", () => {
    expect(merge).toHaveLength(1);
    expect(merge[0].compression).toBe("gzip");
    expect(merge[0].source).toMatch(/^data:;base64,[A-Za-z0-9+/]+=*$/);
    const withToken = files(JSON.parse(JSON.stringify(config)) as IgnConfig).filter((f) => f.contents?.source.includes("${TfToken["));
    expect(withToken.length).toBeGreaterThanOrEqual(2);
    expect(files(packed)).toEqual(withToken);
    expect(packed.systemd).toBeUndefined();
  });

  it("the merged config and the user data's own files are, together, the rendered config", () => {
    const flat = JSON.parse(JSON.stringify(config)) as IgnConfig;
    const unpacked = unpackMerges(packed);
    const byPath = (c: IgnConfig) => [...files(c)].sort((a, b) => a.path.localeCompare(b.path));
    expect(byPath(unpacked)).toEqual(byPath(flat));
    expect(unpacked.systemd).toEqual(flat.systemd);
    expect(JSON.parse(JSON.stringify(unpackUserData(packUserData(config))))).toEqual(unpacked);
  });

  it("the gzip is byte-stable: no time, no name, OS byte 255, the same bytes on every render", () => {
    const gz = Buffer.from(merge[0].source.slice("data:;base64,".length), "base64");
    expect([gz[0], gz[1], gz[2]]).toEqual([0x1f, 0x8b, 8]);
    expect(gz[3]).toBe(0); // FLG: no name, comment, extra field or header CRC
    expect(gz.readUInt32LE(4)).toBe(0); // MTIME
    expect(gz[9]).toBe(255);
    expect(toUserData(renderNodeIgnition(fixtureInput("control-plane")))).toBe(toUserData(renderNodeIgnition(fixtureInput("control-plane"))));
  });

  it("refuses a Terraform reference anywhere but a whole-file base64 source", () => {
    // Text files refuse one when rendered (above); unit text is only caught here.
    const unitWithToken = renderNodeIgnition({ ...fixtureInput("worker"), units: [{ name: "x.service", contents: `[Service]\nEnvironment=T=${TOKEN}\n`, enabled: false }] });
    expect(() => packUserData(unitWithToken)).toThrow("a Terraform reference sits outside a whole-file `base64` source");
    expect(() => packUserData(packUserData(config))).toThrow("pack a node's own config once");
  });
});

describe("toUserData escapes literal Terraform template syntax and keeps cdktf tokens", () => {
  it("escapes ${ and %{, leaves tokens alone", () => {
    expect(escapeTerraformTemplate(`a \${b} %{c} ${TOKEN} $x`)).toBe(`a $\${b} %%{c} ${TOKEN} $x`);
  });

  it("a unit using ${VAR} reaches the node unchanged after Terraform's template pass", () => {
    const contents = "[Service]\nExecStart=/bin/sh -c 'echo ${HOME} %{x}'\n[Install]\nWantedBy=multi-user.target\n";
    const input = { ...fixtureInput("worker"), units: [{ name: "echo.service", contents }] };
    const userData = toUserData(renderNodeIgnition(input));
    // The unit travels inside the gzip'd boot config, out of Terraform's sight; the only
    // expressions Terraform evaluates are the apply-time files' own.
    expect(resolveTerraformRefs(userData).expressions).toEqual(resolveTerraformRefs(toUserData(renderNodeIgnition(fixtureInput("worker")))).expressions);
    expect(resolveTerraformRefs(userData).expressions.join(" ")).not.toContain("HOME");
    expect(unit(applied(input), "echo.service").contents).toBe(contents);
  });
});

describe("what every node gets", () => {
  const config = applied(fixtureInput("worker"));

  it("Kubernetes binaries from dl.k8s.io into /opt/bin, each with the pinned hash", () => {
    const release = KUBERNETES_RELEASES[DEFAULT_KUBERNETES_VERSION];
    expect(DEFAULT_KUBERNETES_VERSION).toBe("1.36.3");
    for (const name of ["kubeadm", "kubelet", "kubectl"] as const) {
      const f = file(config, `/opt/bin/${name}`);
      expect(f.mode).toBe(0o755);
      // The hash is the pin itself (lib/versions.ts); Ignition checks it against the download on the node.
      expect(f.contents).toEqual({ source: `https://dl.k8s.io/release/v1.36.3/bin/linux/amd64/${name}`, verification: { hash: release[name].hash } });
      expect(release[name].hash).toMatch(/^sha256-[0-9a-f]{64}$/);
    }
  });

  it("every remote source carries a verification hash", () => {
    const remote = files(config).filter((f) => !f.contents?.source.startsWith("data:"));
    expect(remote.length).toBeGreaterThanOrEqual(3);
    for (const f of remote) expect(f.contents?.verification?.hash).toMatch(/^sha(256|512)-[0-9a-f]{64,128}$/);
  });

  it("forwarding on, RA-learnt routes kept on bond0, bridged traffic through ip6tables, br_netfilter loaded", () => {
    const sysctl = Object.fromEntries(
      fileText(config, "/etc/sysctl.d/80-v6fabric-kubernetes.conf")
        .split("\n")
        .filter((l) => l.trim() && !l.startsWith("#"))
        .map((l) => l.split("=").map((s) => s.trim())),
    );
    expect(sysctl["net.ipv6.conf.all.forwarding"]).toBe("1");
    expect(sysctl["net.ipv6.conf.bond0.accept_ra"]).toBe("2");
    expect(sysctl["net.bridge.bridge-nf-call-ip6tables"]).toBe("1");
    const modules = fileText(config, "/etc/modules-load.d/v6fabric-kubernetes.conf").split("\n").filter((l) => l && !l.startsWith("#"));
    expect(modules).toEqual(["br_netfilter"]);
  });

  it("the kubelet's resolv.conf lists only IPv6 resolvers", () => {
    const servers = fileText(config, NODE_PATHS.kubeletResolvConf)
      .split("\n")
      .filter((l) => l.startsWith("nameserver "))
      .map((l) => l.slice("nameserver ".length));
    expect(servers.length).toBeGreaterThanOrEqual(2);
    for (const s of servers) expect(s).toMatch(/^[0-9a-f:]+$/);
    expect(servers).toContain("2001:4860:4860::8888");
  });

  it("containerd and kubelet enabled; kubelet runs /opt/bin/kubelet with kubeadm's files", () => {
    expect(unit(config, "containerd.service").enabled).toBe(true);
    const kubelet = unit(config, "kubelet.service");
    expect(kubelet.enabled).toBe(true);
    const dropin = kubelet.dropins?.find((d) => d.name === "10-kubeadm.conf")?.contents ?? "";
    const execStart = dropin.split("\n").filter((l) => l.startsWith("ExecStart="));
    expect(execStart[0]).toBe("ExecStart=");
    expect(execStart[1]).toMatch(/^ExecStart=\/opt\/bin\/kubelet \$KUBELET_KUBECONFIG_ARGS \$KUBELET_CONFIG_ARGS \$KUBELET_KUBEADM_ARGS/);
    expect(dropin).toContain("--config=/var/lib/kubelet/config.yaml");
    expect(dropin).toContain("--kubeconfig=/etc/kubernetes/kubelet.conf");
    expect(dropin).toContain("EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env");
  });

  it("the kubeadm unit runs after the network, the metadata, containerd and the boot values, and retries", () => {
    const text = unit(config, NODE_UNITS.kubeadm).contents ?? "";
    for (const key of ["After", "Wants"]) {
      expect(unitValues(text, "Unit", key)).toEqual(
        expect.arrayContaining(["network-online.target", "coreos-metadata.service", "containerd.service", NODE_UNITS.bootValues]),
      );
    }
    expect(unitValues(text, "Service", "Restart")).toEqual(["on-failure"]);
    expect(unitValues(text, "Unit", "StartLimitIntervalSec")).toEqual(["0"]);
    expect(unitValues(text, "Unit", "ConditionPathExists")).toEqual([`!${NODE_PATHS.stateDir}/kubeadm.done`]);
    expect(unit(config, NODE_UNITS.kubeadm).enabled).toBe(true);
  });

  it("the boot values and BGP route units run after afterburn's metadata unit", () => {
    expect(unitValues(unit(config, NODE_UNITS.bootValues).contents ?? "", "Unit", "After")).toContain("coreos-metadata.service");
    expect(unitValues(unit(config, NODE_UNITS.bgpPeerRoutes).contents ?? "", "Unit", "After")).toContain("coreos-metadata.service");
  });

  it("no automatic reboots: locksmithd masked, REBOOT_STRATEGY=off", () => {
    expect(unit(config, "locksmithd.service").mask).toBe(true);
    expect(fileText(config, "/etc/flatcar/update.conf")).toMatch(/^REBOOT_STRATEGY=off$/m);
  });

  it("the hostname is the node name", () => {
    expect(fileText(config, "/etc/hostname")).toBe("v6fabric-worker-01\n");
  });

  it("caller units and kubeadm hooks are installed", () => {
    const c = applied({
      ...fixtureInput("control-plane"),
      units: [{ name: "x.service", contents: "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n" }],
      kubeadmHooks: { afterKubeadm: "ip -6 address replace 2001:db8::1/128 dev lo" },
    });
    expect(unit(c, "x.service").enabled).toBe(true);
    expect(fileText(c, `${NODE_PATHS.hookDir}/after-kubeadm`)).toBe("#!/bin/bash\nset -euo pipefail\nip -6 address replace 2001:db8::1/128 dev lo\n");
    expect(files(c).map((f) => f.path)).not.toContain(`${NODE_PATHS.hookDir}/before-kubeadm`);
  });
});

describe("input validation names the setting, the value and what is valid", () => {
  const base = fixtureInput("worker");
  it.each<[string, Partial<NodeIgnitionInput>, string]>([
    ["empty kubeadm config", { kubeadmConfig: " " }, "kubeadmConfig is empty"],
    ["relative path", { files: [{ path: "etc/x", mode: 0o644, text: "" }] }, 'file path "etc/x" is not valid: use an absolute path'],
    ["/usr path", { files: [{ path: "/usr/bin/x", mode: 0o755, text: "" }] }, "Flatcar's /usr is read-only"],
    ["kubeadm path as a file", { files: [{ path: NODE_PATHS.kubeadmConfig, mode: 0o600, text: "" }] }, "pass it as kubeadmConfig"],
    ["bad mode", { files: [{ path: "/etc/x", mode: 0o17777, text: "" }] }, "is not a valid permission mode"],
    ["bad remote hash", { files: [{ path: "/opt/x", mode: 0o755, remote: { url: "https://x", hash: "md5-00" } }] }, 'remote hash "md5-00" is not valid'],
    ["add-ons on a worker", { addonManifests: ["/etc/x"], files: [{ path: "/etc/x", mode: 0o644, text: "" }] }, 'only applied by role "init", not by role "worker"'],
    ["unknown add-on", { role: "init", addonManifests: ["/etc/missing.yaml"] }, "addon manifest /etc/missing.yaml is not among the node's files"],
    ["IPv4 resolver", { dnsResolvers: ["8.8.8.8"] }, 'DNS resolver "8.8.8.8" is not an IPv6 address'],
    ["enabled unit without [Install]", { units: [{ name: "x.service", contents: "[Service]\nExecStart=/bin/true\n" }] }, "has no [Install] section"],
    ["a text file with a Terraform reference", { files: [...base.files, { path: "/etc/x", mode: 0o600, text: `secret: ${TOKEN}\n` }] }, "file /etc/x: text holds a Terraform reference (cdktf token): text must be known at synth; pass the whole file as `base64`"],
    ["a kubeadm config with a Terraform reference", { kubeadmConfig: `token: ${TOKEN}\n` }, "kubeadmConfig holds a Terraform reference (cdktf token)"],
  ])("%s", (_name, change, message) => {
    expect(() => renderNodeIgnition({ ...base, ...change })).toThrow(message);
  });
});

describe("templates", () => {
  it("every placeholder must be given and every value used", () => {
    expect(() => renderTemplate("units/v6fabric-addons.service", {})).toThrow("needs a value for @");
    expect(() => renderTemplate("units/kubelet.service", { X: "1" })).toThrow("has no placeholder @X@");
  });

  it("rendered scripts carry the boot placeholders of lib/boot-values.ts", () => {
    const script = fileText(render(fixtureInput("worker")), `${NODE_PATHS.scriptDir}/render-boot-values`);
    // Every placeholder, as the pattern of a sed substitution (printf 's/%s/%s/g' '<placeholder>' value).
    for (const placeholder of Object.values(BOOT_VALUES)) expect(script).toMatch(new RegExp(`printf 's/%s/%s/g\\\\n' '${placeholder}' "\\$`));
    expect(script).not.toMatch(/@[A-Z_]+@/);
  });
});

describeWithTools(["ignition-validate"], "ignition-validate (Debian ignition) accepts every role without errors or warnings", () => {
  it.each(ROLES)("%s", (role) => {
    const { status, output } = ignitionValidate(JSON.stringify(applied(fixtureInput(role))));
    expect(output).toBe("");
    expect(status).toBe(0);
  });
});
