/**
 * The control-plane rehearsal (rung L5b) for the first control plane: real Terraform and
 * the real metal provider apply the stack against the Metal API emulator, the real
 * ignition binary writes the node from the user data Metal received, the node reads its
 * metadata from the metro as on Metal, and its own units run kubeadm init and the add-ons with the real
 * kubeadm, kubelet, etcd, kube-apiserver, controller manager, scheduler and kubectl
 * 1.36.3, on containerd 2.4 and Debian's runc. The kubelet's overrides for this
 * machine, and why, are in rehearsal/kubelet.ts and docs/rehearsal.md. Expected values are the design's (docs/control-plane.md,
 * docs/address-plan.md) for the default settings, written out here.
 */
import { spawnSync } from "node:child_process";
import { X509Certificate, createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import YAML from "yaml";
import { unpackUserData } from "../ignition/user-data";
import { PreparedCluster } from "../rehearsal/cluster";
import { InitNodeBoot, addonDocuments, bootInitNode, declaredDifferences } from "../rehearsal/control-plane";
import { NodeRuntime } from "../rehearsal/kubelet";
import { RehearsalNode } from "../rehearsal/nodes";
import { controlPlaneRehearsalSkipReason } from "./support/control-plane-rehearsal";

const why = controlPlaneRehearsalSkipReason(["ignition-validate", "jq", "systemd-analyze"]);
if (why) console.warn(`SKIPPED control-plane rehearsal: ${why}`);
const describeRehearsal = why ? describe.skip : describe;

const API = "https://[2001:db8:0:ab20::1]:443"; // the kubernetes ClusterIP (zone 2, ::1), port 443
const INIT_IPV6 = "2001:db8:0:ab00::1"; // the first /127 Metal gives in the block's first /64
const ADMIN = ["kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf"];

describeRehearsal("control-plane rehearsal: the first control plane forms from its applied user data", () => {
  let work: string;
  let cluster: PreparedCluster | undefined;
  let node: RehearsalNode;
  let boot: InitNodeBoot;
  let caPem: string;
  let missingDownloads: readonly string[];

  beforeAll(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), "v6fabric-cp-rehearsal-"));
    cluster = PreparedCluster.prepare(work, { PATH: process.env.PATH, HOME: process.env.HOME });
    caPem = cluster.outputs.cluster_ca_certificate.value as string;
    const init = cluster.nodes.find((n) => n.role === "init")!;
    node = init.node;
    missingDownloads = init.missingDownloads;
    boot = await bootInitNode(node, path.join(work, "logs"));
    console.log(`rehearsal figure: first control plane, kubeadm init done after ${(boot.kubeadmDoneMs / 1000).toFixed(1)} s, add-ons after ${(boot.addonsDoneMs / 1000).toFixed(1)} s`);
  }, 900_000);

  afterAll(() => {
    boot?.agent.stop();
    try {
      cluster?.destroy();
    } finally {
      if (work) fs.rmSync(work, { recursive: true, force: true });
    }
  }, 300_000);

  const logTail = (runs: { output: string }[]) => runs.map((r) => r.output).join("\n").split("\n").slice(-40).join("\n");

  test("each node boots, and fetches from the metro by its own address, the user data Terraform sent for its device, byte for byte, with exactly Metal's addresses", () => {
    const devices = cluster!.terraform.devices();
    expect(devices.map((d) => d.hostname).sort()).toEqual(["v6fabric-cp-1", "v6fabric-worker-01", "v6fabric-worker-02"]);
    // Terraform's side: equinix/metal 3.3.0 keeps the configured user_data in the state and
    // never reads it back from Metal (resource_metal_device.go), so this is what it sent,
    // not what the emulator stored, which is what the rehearsal boots.
    const state = cluster!.terraform.terraform.json<{ values?: { root_module?: { resources?: { type: string; values: Record<string, unknown> }[] } } }>(["show", "-json"]);
    const sent = new Map((state.values?.root_module?.resources ?? []).filter((r) => r.type === "metal_device").map((r) => [r.values.hostname as string, r.values.user_data as string]));
    expect([...sent.keys()].sort()).toEqual(devices.map((d) => d.hostname).sort());
    // Ignition's packet provider fetches /userdata from the metadata service, which answers by the caller's address.
    const userDataUrl = new URL("/userdata", cluster!.fabric!.metadataUrl!).href;
    for (const device of devices) {
      const booted = fs.readFileSync(path.join(work, "nodes", device.hostname, "user-data.ign"), "utf8");
      const fetched = cluster!.byName(device.hostname).exec(["curl", "--fail", "--silent", "--show-error", "--max-time", "10", userDataUrl], { timeoutMs: 20_000 });
      expect([device.hostname, fetched.status, fetched.stderr]).toEqual([device.hostname, 0, ""]);
      expect([device.hostname, sent.get(device.hostname)!.length > 0, booted === sent.get(device.hostname), fetched.stdout === sent.get(device.hostname)]).toEqual([device.hostname, true, true, true]);
      // What the offline apply check read differs only in the downloads' sources, which installDownloads fills from local copies.
      const offline = fs.readFileSync(path.join(work, "nodes", device.hostname, "user-data.offline.ign"), "utf8");
      const withoutSources = (text: string) => JSON.stringify(unpackUserData(JSON.parse(text)), (k, v) => (k === "contents" && !String(v?.source).startsWith("data:") ? { source: "data:," } : v));
      expect(withoutSources(offline)).toBe(withoutSources(device.userData));
      const rehearsed = cluster!.byName(device.hostname);
      const addresses = rehearsed.exec(["ip", "-o", "addr", "show", "dev", "eth0", "scope", "global"]).stdout;
      const onEth0 = [...addresses.matchAll(/inet6? (\S+)/g)].map((m) => m[1]).sort();
      expect([device.hostname, onEth0]).toEqual([device.hostname, [`${device.privateIpv4.address}/31`, `${device.publicIpv6.address}/127`].sort()]);
    }
    expect(devices.find((d) => d.hostname === "v6fabric-cp-1")!.publicIpv6.address).toBe(INIT_IPV6);
  });

  test("at boot the node reads Metal's metadata from the metro: afterburn's attributes, and routes to both BGP peers Metal lists", () => {
    const metadata = fs.readFileSync(node.hostPath("/run/metadata/flatcar"), "utf8");
    expect(metadata).toContain(`COREOS_PACKET_HOSTNAME=v6fabric-cp-1\n`);
    expect(metadata).toContain(`COREOS_PACKET_IPV6_PUBLIC_0=${INIT_IPV6}\n`);
    expect(metadata).toContain(`COREOS_PACKET_IPV6_PUBLIC_GATEWAY_0=2001:db8:0:ab00::\n`);
    expect([boot.peerRoutes.at(-1)?.status, logTail(boot.peerRoutes)]).toEqual([0, expect.stringContaining("fc00::f/128 via 2001:db8:0:ab00::")]);
    const routes = node.exec(["ip", "-6", "route", "show"]).stdout;
    expect(routes).toMatch(/^fc00::e via 2001:db8:0:ab00:: dev eth0/m);
    expect(routes).toMatch(/^fc00::f via 2001:db8:0:ab00:: dev eth0/m);
  });

  test("only the Kubernetes downloads are replaced by local builds; Calico's manifests are the pinned upstream files", () => {
    expect(missingDownloads).toEqual([
      "https://dl.k8s.io/release/v1.36.3/bin/linux/amd64/kubeadm",
      "https://dl.k8s.io/release/v1.36.3/bin/linux/amd64/kubelet",
      "https://dl.k8s.io/release/v1.36.3/bin/linux/amd64/kubectl",
      // The NAT64 translator's package, at NAT64_TAYGA_PACKAGE_URL's placeholder default
      // (a deploy's plan refuses it; the rehearsal leaves the devices and their checks
      // out). This rehearsal runs no NAT64 unit; the NAT64 rehearsal
      // (rehearsal-nat64.test.ts) runs its script and tayga.
      // NAT64_TAYGA_PACKAGE_URL is unset, so the rehearsal names its own mirror.
      "https://tayga-mirror.rehearsal.internal/debian/pool/main/t/tayga/tayga_0.9.2-8_amd64.deb",
    ]);
    expect(node.exec(["kubeadm", "version", "-o", "short"]).stdout.trim()).toBe("v1.36.3");
    // Upstream's files by the hashes reference/upstream/calico-v3.32.1/SHA512SUMS lists.
    const sums = fs.readFileSync(path.join(__dirname, "..", "reference", "upstream", "calico-v3.32.1", "SHA512SUMS"), "utf8");
    for (const [file, upstream] of [["00-calico-v3-crds.yaml", "v3_projectcalico_org.yaml"], ["00-tigera-operator.yaml", "tigera-operator.yaml"]]) {
      const onNode = createHash("sha512").update(fs.readFileSync(node.hostPath(`/etc/kubernetes/addons/calico/${file}`))).digest("hex");
      expect([file, sums]).toEqual([file, expect.stringContaining(`${onNode}  ${upstream}`)]);
    }
  });

  test("the boot-values unit renders kubeadm.yaml with the node's address from the metadata", () => {
    expect([boot.bootValues.at(-1)?.status, logTail(boot.bootValues)]).toEqual([0, expect.stringContaining(`node IPv6 ${INIT_IPV6}`)]);
    const config = fs.readFileSync(node.hostPath("/etc/kubernetes/kubeadm.yaml"), "utf8");
    expect(config).not.toContain("__NODE_IPV6__");
    const init = YAML.parseAllDocuments(config).map((d) => d.toJS()).find((d) => d.kind === "InitConfiguration");
    expect(init.localAPIEndpoint).toEqual({ advertiseAddress: INIT_IPV6, bindPort: 443 });
  });

  test("kubeadm init exits 0 on its first attempt, through the unit's own script", () => {
    expect([boot.kubeadm.length, boot.kubeadm[0].status, logTail(boot.kubeadm)]).toEqual([1, 0, expect.stringContaining("kubeadm-bootstrap: kubeadm init succeeded")]);
    expect(fs.existsSync(node.hostPath("/var/lib/v6fabric/kubeadm.done"))).toBe(true);
  });

  test("etcd and the control-plane components run as containers of the real kubelet on containerd, from kubeadm's manifests", () => {
    expect(boot.agent).toBeInstanceOf(NodeRuntime);
    // The mirror Pods the kubelet publishes: each static pod Running, its container containerd's.
    const pods = JSON.parse(node.exec([...ADMIN, "-n", "kube-system", "get", "pods", "-o", "json"]).stdout).items.filter((p: any) => p.spec.nodeName === "v6fabric-cp-1");
    const summary = pods
      .filter((p: any) => p.metadata.annotations?.["kubernetes.io/config.mirror"])
      .map((p: any) => [p.metadata.name, p.status.phase, p.status.containerStatuses?.[0]?.containerID?.split("://")[0], p.status.containerStatuses?.[0]?.image])
      .sort();
    expect(summary).toEqual([
      ["etcd-v6fabric-cp-1", "Running", "containerd", "registry.k8s.io/etcd:3.6.8-0"],
      ["kube-apiserver-v6fabric-cp-1", "Running", "containerd", "registry.k8s.io/kube-apiserver:v1.36.3"],
      ["kube-controller-manager-v6fabric-cp-1", "Running", "containerd", "registry.k8s.io/kube-controller-manager:v1.36.3"],
      ["kube-scheduler-v6fabric-cp-1", "Running", "containerd", "registry.k8s.io/kube-scheduler:v1.36.3"],
    ]);
    // containerd's own view, through its CLI: one container per static pod, and a sandbox each.
    const containers = node.exec(["/opt/v6fabric-rehearsal/bin/ctr", "-n", "k8s.io", "containers", "ls", "-q"]).stdout.trim().split("\n");
    expect(containers.length).toBeGreaterThanOrEqual(8);
    // The API server process is in the kubelet's pod cgroup (kubepods under the node's cgroupRoot), not the rehearsal's.
    // (Other nodes and rehearsals share the PID namespace: look only in this node's network namespace.)
    const pids = spawnSync("ip", ["netns", "pids", node.netns], { encoding: "utf8" }).stdout.split("\n").filter(Boolean);
    const apiserverPids = pids.filter((pid) => fs.existsSync(`/proc/${pid}/comm`) && fs.readFileSync(`/proc/${pid}/comm`, "utf8").trim() === "kube-apiserver");
    expect(apiserverPids).toHaveLength(1);
    expect(fs.readFileSync(`/proc/${apiserverPids[0]}/cgroup`, "utf8")).toContain(`:memory:/${node.netns}/kubepods/`);
    const apiserver = YAML.parse(fs.readFileSync(node.hostPath("/etc/kubernetes/manifests/kube-apiserver.yaml"), "utf8")).spec.containers[0].command as string[];
    expect(apiserver).toEqual(
      expect.arrayContaining([`--advertise-address=${INIT_IPV6}`, "--secure-port=443", "--bind-address=::", "--service-cluster-ip-range=2001:db8:0:ab20::/108"]),
    );
    const kcm = YAML.parse(fs.readFileSync(node.hostPath("/etc/kubernetes/manifests/kube-controller-manager.yaml"), "utf8")).spec.containers[0].command as string[];
    expect(kcm).toEqual(expect.arrayContaining(["--allocate-node-cidrs=false"]));
  });

  test("the kubelet registered the Node: NotReady without a CNI, marked as a control plane by kubeadm", () => {
    const got = node.exec([...ADMIN, "get", "node", "v6fabric-cp-1", "-o", "json"]);
    expect(got.status).toBe(0);
    const n = JSON.parse(got.stdout);
    const ready = n.status.conditions.find((c: any) => c.type === "Ready");
    expect([ready.status, ready.message]).toEqual(["False", expect.stringContaining("NetworkPluginNotReady")]);
    expect(n.status.nodeInfo).toMatchObject({ kubeletVersion: "v1.36.3", containerRuntimeVersion: "containerd://2.4.2" });
    expect(n.status.addresses).toContainEqual({ type: "InternalIP", address: INIT_IPV6 });
    // mark-control-plane ran: kubeadm's label and taint.
    expect(Object.keys(n.metadata.labels)).toContain("node-role.kubernetes.io/control-plane");
    expect(n.spec.taints).toContainEqual({ key: "node-role.kubernetes.io/control-plane", effect: "NoSchedule" });
  });

  test("/readyz answers at the endpoint every node is configured with: the ClusterIP, port 443, through the node's own API path", () => {
    // The path's rule sends the ClusterIP to this node's own API server; nothing holds the address.
    const table = node.exec(["nft", "list", "table", "ip6", "v6fabric_api_path"]).stdout;
    expect(table).toContain(`ip6 daddr 2001:db8:0:ab20::1 tcp dport 443 dnat to ${INIT_IPV6}`);
    expect(node.exec(["ip", "-6", "addr", "show"]).stdout).not.toContain("2001:db8:0:ab20::1");
    const adminConf = YAML.parse(fs.readFileSync(node.hostPath("/etc/kubernetes/admin.conf"), "utf8"));
    expect(adminConf.clusters[0].cluster.server).toBe(API);
    const ready = node.exec([...ADMIN, "get", "--raw", "/readyz?verbose"]);
    expect([ready.status, ready.stdout]).toEqual([0, expect.stringContaining("readyz check passed")]);
    expect(ready.stdout).toContain("[+]etcd ok");
  });

  test("the API server's certificate is signed by the CA Terraform made, for the ClusterIP and the node", () => {
    const ca = new X509Certificate(caPem);
    const served = new X509Certificate(fs.readFileSync(node.hostPath("/etc/kubernetes/pki/apiserver.crt")));
    expect(served.verify(ca.publicKey)).toBe(true);
    expect(served.subjectAltName).toContain("IP Address:2001:DB8:0:AB20:0:0:0:1");
    expect(served.subjectAltName).toContain(`IP Address:2001:DB8:0:AB00:0:0:0:1`);
    expect(new X509Certificate(fs.readFileSync(node.hostPath("/etc/kubernetes/pki/ca.crt"))).fingerprint256).toBe(ca.fingerprint256);
  });

  test("kubeadm stored the design's networking; no bootstrap token is left in the cluster, while kubeadm's approval of a node's own renewals is", () => {
    const cm = JSON.parse(node.exec([...ADMIN, "-n", "kube-system", "get", "configmap", "kubeadm-config", "-o", "json"]).stdout);
    const cluster = YAML.parse(cm.data.ClusterConfiguration);
    expect(cluster.networking).toEqual({ dnsDomain: "cluster.local", podSubnet: "2001:db8:0:ab10::/64", serviceSubnet: "2001:db8:0:ab20::/108" });
    expect(cluster.controlPlaneEndpoint).toBe("[2001:db8:0:ab20::1]:443");
    // kubeadm init made one (its bootstrap-token phase always does); the init node's after-kubeadm hook deleted it.
    expect(boot.kubeadm.map((r) => r.output).join("\n")).toMatch(/secret "bootstrap-token-[a-z0-9]{6}" deleted/);
    const tokens = node.exec([...ADMIN, "-n", "kube-system", "get", "secrets", "--field-selector", "type=bootstrap.kubernetes.io/token", "-o", "name"]);
    expect([tokens.status, tokens.stdout]).toEqual([0, ""]);
    // What joining nodes' first certificate requests need (for their own name only).
    expect(node.exec([...ADMIN, "get", "clusterrolebinding", "kubeadm:node-autoapprove-certificate-rotation"]).status).toBe(0);
  });

  test("the add-on unit applies Calico v3.32.1's native v3 CRDs first, then the add-ons, with the real kubectl; all read back as declared", () => {
    expect([boot.addons.at(-1)?.status, logTail(boot.addons)]).toEqual([0, expect.stringContaining("apply-addons: all add-ons applied")]);
    const output = boot.addons.map((r) => r.output).join("\n");
    expect(output).toContain("customresourcedefinition.apiextensions.k8s.io/bgpconfigurations.projectcalico.org serverside-applied");
    expect(output.indexOf("applied /etc/kubernetes/addons/calico/00-calico-v3-crds.yaml")).toBeLessThan(output.indexOf("applied /etc/kubernetes/addons/calico/00-tigera-operator.yaml"));
    const docs = addonDocuments(node);
    const kinds = new Set(docs.map((d) => d.doc.kind));
    for (const kind of [
      "Installation",
      "BGPConfiguration",
      "BGPPeer",
      "BGPFilter",
      "IPAMConfiguration",
      "IPPool",
      "CustomResourceDefinition",
      "ValidatingAdmissionPolicy",
      "ValidatingAdmissionPolicyBinding",
      "FelixConfiguration",
      "GlobalNetworkPolicy",
      "KubeControllersConfiguration",
      "Deployment",
    ])
      expect(kinds).toContain(kind);
    const problems: string[] = [];
    for (const { manifest, doc } of docs) {
      const group = String(doc.apiVersion).includes("/") ? `.${String(doc.apiVersion).split("/")[0]}` : "";
      const ns = doc.metadata.namespace ? ["-n", doc.metadata.namespace] : [];
      const live = node.exec([...ADMIN, "get", `${doc.kind}${group}`, doc.metadata.name, ...ns, "-o", "json"]);
      if (live.status !== 0) {
        problems.push(`${manifest} ${doc.kind}/${doc.metadata.name}: ${live.stderr.trim()}`);
        continue;
      }
      const liveObject = JSON.parse(live.stdout);
      const declared = { ...doc, metadata: { name: doc.metadata.name, labels: doc.metadata.labels, annotations: doc.metadata.annotations } };
      if (!declared.metadata.labels) delete declared.metadata.labels;
      if (!declared.metadata.annotations) delete declared.metadata.annotations;
      problems.push(...declaredDifferences(declared, liveObject).map((d) => `${manifest} ${doc.kind}/${doc.metadata.name}${d}`));
    }
    expect(problems).toEqual([]);
  });

  test("the operator would start in v3 mode: the API server serves projectcalico.org/v3 and no crd.projectcalico.org group", () => {
    // What operator 1.42.3's UseV3CRDS (pkg/apis/version.go) and libcalico-go's UsingV3CRDs read: the served groups.
    const versions = node.exec([...ADMIN, "api-versions"]);
    expect(versions.status).toBe(0);
    const groups = versions.stdout.split("\n").filter((g) => g.includes("projectcalico.org"));
    expect(groups).toEqual(["projectcalico.org/v3"]);
    const crds = node.exec([...ADMIN, "get", "crd", "-o", "name"]).stdout.split("\n").filter(Boolean);
    expect(crds).toContain("customresourcedefinition.apiextensions.k8s.io/bgppeers.projectcalico.org");
    expect(crds.filter((c) => c.endsWith(".crd.projectcalico.org"))).toEqual([]);
  });

  describe("the API server validates Calico's objects with the v3 CRDs", () => {
    function applyBad(name: string, doc: object): { status: number | null; stderr: string } {
      const bad = `/etc/v6fabric-rehearsal/${name}.yaml`;
      fs.writeFileSync(node.hostPath(bad), YAML.stringify(doc));
      return node.exec([...ADMIN, "apply", "--server-side", "-f", bad]);
    }

    test("a misspelled field is refused, not dropped", () => {
      const result = applyBad("misspelled", { apiVersion: "projectcalico.org/v3", kind: "BGPPeer", metadata: { name: "misspelled" }, spec: { peerIP: "fc00::e", asNumbr: 65530 } });
      expect(result.status).not.toBe(0);
      expect(result.stderr).toContain(".spec.asNumbr: field not declared in schema");
    });

    test("a CEL rule of the CRD holds: a peer cannot name a node and select nodes", () => {
      const result = applyBad("node-and-selector", {
        apiVersion: "projectcalico.org/v3",
        kind: "BGPPeer",
        metadata: { name: "node-and-selector" },
        spec: { peerIP: "fc00::e", asNumber: 65530, node: "v6fabric-cp-1", nodeSelector: "all()" },
      });
      expect(result.status).not.toBe(0);
      expect(result.stderr).toContain("node and nodeSelector cannot both be set");
    });

    test("the old group is not served: a crd.projectcalico.org/v1 object is refused", () => {
      const result = applyBad("old-group", { apiVersion: "crd.projectcalico.org/v1", kind: "BGPPeer", metadata: { name: "old-group" }, spec: { peerIP: "fc00::e", asNumber: 65530 } });
      expect(result.status).not.toBe(0);
      expect(result.stderr).toMatch(/no matches for kind "BGPPeer" in version "crd.projectcalico.org\/v1"|the server could not find the requested resource/);
    });
  });

  describe("Local Services stay within the prefix budget: the API server refuses what no node could announce", () => {
    // Written out from the default plan and LOCAL_SERVICE_ROUTES=4 (docs/address-plan.md):
    // the external range is zone 3's first /112; the Local pool is the first 4 addresses
    // of its second half; the Cluster pool is its first half.
    const LOCAL_POOL = ["2001:db8:0:ab30::8000", "2001:db8:0:ab30::8001", "2001:db8:0:ab30::8002", "2001:db8:0:ab30::8003"];
    const NEXT_AFTER_POOL = "2001:db8:0:ab30::8004";
    const CLUSTER_POOL_ADDRESS = "2001:db8:0:ab30::10";
    const OUTSIDE_EXTERNAL = "2001:db8:ffff::10";
    const ASK_LOCAL = { "projectcalico.org/ipv6pools": '["local-services-ipv6"]' };
    let serial = 0;

    function service(policy: "Local" | "Cluster", extra: { annotations?: Record<string, string>; externalIPs?: string[]; type?: string } = {}) {
      serial += 1;
      return {
        apiVersion: "v1",
        kind: "Service",
        metadata: { name: `budget-${serial}`, namespace: "default", ...(extra.annotations ? { annotations: extra.annotations } : {}) },
        spec: {
          type: extra.type ?? "LoadBalancer",
          externalTrafficPolicy: policy,
          ipFamilyPolicy: "SingleStack",
          ipFamilies: ["IPv6"],
          selector: { app: "budget" },
          ports: [{ port: 80, targetPort: 8080 }],
          ...(extra.externalIPs ? { externalIPs: extra.externalIPs } : {}),
        },
      };
    }

    function create(doc: object): { status: number | null; stderr: string } {
      const file = `/etc/v6fabric-rehearsal/service-${serial}.yaml`;
      fs.writeFileSync(node.hostPath(file), YAML.stringify(doc));
      return node.exec([...ADMIN, "create", "-f", file]);
    }

    /** What Calico's LoadBalancer controller does when it assigns an address: a status write. */
    function publish(name: string, address: string): { status: number | null; stderr: string } {
      const patch = JSON.stringify({ status: { loadBalancer: { ingress: [{ ip: address, ipMode: "VIP" }] } } });
      return node.exec([...ADMIN, "-n", "default", "patch", "service", name, "--subresource=status", "--type=merge", "-p", patch]);
    }

    test("the Local pool is a Manual pool of exactly LOCAL_SERVICE_ROUTES addresses, the Cluster pool the external range's first half", () => {
      const pools = JSON.parse(node.exec([...ADMIN, "get", "ippools.projectcalico.org", "-o", "json"]).stdout).items;
      const byName = Object.fromEntries(pools.map((p: any) => [p.metadata.name, p.spec]));
      expect(byName["local-services-ipv6"]).toMatchObject({ cidr: "2001:db8:0:ab30::8000/126", assignmentMode: "Manual", allowedUses: ["LoadBalancer"] });
      expect(byName["loadbalancer-ipv6"]).toMatchObject({ cidr: "2001:db8:0:ab30::/113", assignmentMode: "Automatic" });
    });

    test("a Local LoadBalancer Service must ask for the Local pool; the message says how", () => {
      const refused = create(service("Local"));
      expect(refused.status).not.toBe(0);
      expect(refused.stderr).toContain("v6fabric-local-service-addresses");
      expect(refused.stderr).toContain(`annotate it projectcalico.org/ipv6pools: '["local-services-ipv6"]'`);
      expect(create(service("Local", { annotations: ASK_LOCAL })).status).toBe(0);
    });

    test("a Cluster Service may not take the Local pool", () => {
      const refused = create(service("Cluster", { annotations: ASK_LOCAL }));
      expect([refused.status, refused.stderr]).toEqual([1, expect.stringContaining("is for externalTrafficPolicy: Local Services only")]);
      expect(create(service("Cluster")).status).toBe(0);
    });

    test("no Service may set spec.externalIPs, whatever the address: the message says why", () => {
      for (const [policy, address] of [["Local", LOCAL_POOL[0]], ["Cluster", CLUSTER_POOL_ADDRESS], ["Cluster", OUTSIDE_EXTERNAL]] as const) {
        const refused = create(service(policy, { type: "NodePort", externalIPs: [address] }));
        expect([policy, address, refused.status, refused.stderr]).toEqual([policy, address, 1, expect.stringContaining("v6fabric-service-external-ips")]);
        expect(refused.stderr).toContain("spec.externalIPs is not allowed: kube-proxy would take traffic for those addresses to this Service on every node, whoever owns them (CVE-2020-8554)");
      }
      // Adding them to an existing Service is refused too; an empty list is no claim.
      const plain = service("Cluster", { type: "NodePort", externalIPs: [] });
      expect(create(plain).status).toBe(0);
      const add = node.exec([...ADMIN, "-n", "default", "patch", "service", plain.metadata.name, "--type=merge", "-p", JSON.stringify({ spec: { externalIPs: [OUTSIDE_EXTERNAL] } })]);
      expect([add.status, add.stderr]).toEqual([1, expect.stringContaining("spec.externalIPs is not allowed")]);
    });

    test("the addresses a Local Service asks Calico for, in the external range, must come from the Local pool; addresses outside the range cost nothing", () => {
      const ask = (address: string) => ({ ...ASK_LOCAL, "projectcalico.org/loadBalancerIPs": JSON.stringify([address]) });
      const refused = create(service("Local", { annotations: ask(CLUSTER_POOL_ADDRESS) }));
      expect([refused.status, refused.stderr]).toEqual([1, expect.stringContaining("only from the Local pool 2001:db8:0:ab30::8000/126")]);
      expect(create(service("Local", { annotations: ask(OUTSIDE_EXTERNAL) })).status).toBe(0);
      expect(create(service("Cluster", { annotations: { "projectcalico.org/loadBalancerIPs": JSON.stringify([CLUSTER_POOL_ADDRESS]) } })).status).toBe(0);
    });

    test("a Cluster Service may not ask for a Local pool address by name", () => {
      const refused = create(service("Cluster", { annotations: { "projectcalico.org/loadBalancerIPs": `["${LOCAL_POOL[3]}"]` } }));
      expect([refused.status, refused.stderr]).toEqual([1, expect.stringContaining("the addresses of the pool local-services-ipv6 (2001:db8:0:ab30::8000/126) are for externalTrafficPolicy: Local Services only")]);
      // A Local Service with a Local address may still become a Cluster one (Calico then releases the address).
      const local = service("Local", { annotations: ASK_LOCAL });
      expect(create(local).status).toBe(0);
      expect(publish(local.metadata.name, LOCAL_POOL[3]).status).toBe(0);
      const patch = JSON.stringify({ metadata: { annotations: { "projectcalico.org/ipv6pools": null } }, spec: { externalTrafficPolicy: "Cluster" } });
      const flip = node.exec([...ADMIN, "-n", "default", "patch", "service", local.metadata.name, "--type=merge", "-p", patch]);
      expect([flip.status, flip.stderr]).toEqual([0, expect.any(String)]);
    });

    test("one Local Service past the budget gets no address a node would announce: status writes outside the pool are refused", () => {
      const names: string[] = [];
      for (let i = 0; i <= LOCAL_POOL.length; i++) {
        const doc = service("Local", { annotations: ASK_LOCAL });
        expect(create(doc).status).toBe(0);
        names.push(doc.metadata.name);
      }
      LOCAL_POOL.forEach((address, i) => expect([address, publish(names[i], address).status]).toEqual([address, 0]));
      // The fifth has the pool's every address taken (Calico IPAM hands out each once);
      // any other address of the external range is refused.
      for (const address of [NEXT_AFTER_POOL, CLUSTER_POOL_ADDRESS]) {
        const refused = publish(names[LOCAL_POOL.length], address);
        expect([address, refused.status, refused.stderr]).toEqual([address, 1, expect.stringContaining("only from the Local pool")]);
      }
      // Turning a Cluster Service with a Cluster-pool address into a Local one is refused too.
      const cluster = service("Cluster");
      expect(create(cluster).status).toBe(0);
      expect(publish(cluster.metadata.name, CLUSTER_POOL_ADDRESS).status).toBe(0);
      const flip = node.exec([...ADMIN, "-n", "default", "patch", "service", cluster.metadata.name, "--type=merge", "-p", JSON.stringify({ metadata: { annotations: ASK_LOCAL }, spec: { externalTrafficPolicy: "Local" } })]);
      expect([flip.status, flip.stderr]).toEqual([1, expect.stringContaining("only from the Local pool")]);
    });
  });
});
