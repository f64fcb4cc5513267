/**
 * What each node's kubeadm configuration and PKI files say, written out here by hand
 * from docs/control-plane.md, the README's address plan and upstream defaults, and
 * compared whole with what the synthesized user data carries (default settings).
 *
 * The other kubeadm tests check shape (strict schemas, YAML 1.1, quoting) and agreement
 * with an independent address model; these check the values. A field set to another
 * valid value (a wrong port, a different timeout, a swapped CA file) passes every schema
 * and fails here. Nothing here is computed by the code under test: no lib/ constant, no
 * address plan, no renderer call. The CA behind each PKI file is identified from the
 * synthesized tls_* resources by the subject kubeadm gives that CA, not by lib names.
 * __tests__/rehearsal-terraform.test.ts checks the same layout on certificates the real
 * tls provider made; this one also runs where Terraform is not built.
 */
import { onlyStack, resourcesOf, synthesize, TerraformJson } from "./support/synth";
import { decodeDataUrl, IgnConfig, IgnFile, unit, unpackMerges } from "./support/ignition";
import { parseYaml11Documents } from "./support/kubeadm-validate";
import { parseTerraformTemplate } from "../lib/terraform-template";

// ---------------------------------------------------------------------------
// The expected documents. Comments say why a value is what it is.
// ---------------------------------------------------------------------------

/**
 * nodeRegistration, the same on every node but for the name. `__NODE_IPV6__` is the
 * boot placeholder the node replaces with its public IPv6 from the metadata
 * (docs/control-plane.md, "Node address").
 */
const nodeRegistration = (hostname: string) => `
nodeRegistration:
  name: ${hostname}
  # Flatcar's own containerd (docs/control-plane.md, "Runtime").
  criSocket: "unix:///run/containerd/containerd.sock"
  kubeletExtraArgs:
    # KubeletConfiguration has no node-ip field; without it a dual-stack host may
    # report its private IPv4 first (docs/facts.md).
    - name: node-ip
      value: "__NODE_IPV6__"
    # Registered withdrawn from Service announcements until kube-proxy works
    # (docs/bgp-fabric.md, "When a node announces the Service ranges").
    - name: node-labels
      value: "node.kubernetes.io/exclude-from-external-load-balancers=true"
`;

const INIT_KUBEADM_YAML = `
apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
bootstrapTokens:
  # No node joins with a token (each has its own certificate): kubeadm makes up this one
  # for its init phase, and the init node deletes it right after init.
  - description: "unused: made by kubeadm init and deleted right after it (v6fabric)"
    ttl: 15m0s
${nodeRegistration("v6fabric-cp-1")}
localAPIEndpoint:
  advertiseAddress: "__NODE_IPV6__"
  # The API servers listen on 443, the kubernetes Service's port, not kubeadm's 6443
  # (docs/control-plane.md, "Port 443").
  bindPort: 443
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
clusterName: v6fabric
# KUBERNETES_VERSION's default, with the "v" kubeadm wants.
kubernetesVersion: v1.36.3
# The kubernetes Service ClusterIP (first address of zone 2 of 2001:db8:0:ab00::/56) on 443.
controlPlaneEndpoint: "[2001:db8:0:ab20::1]:443"
# The Terraform-made CAs are ECDSA P-256; kubeadm's leaf certificates match them.
encryptionAlgorithm: ECDSA-P256
networking:
  # Zone 1, its first /64 (README, "Address plan").
  podSubnet: "2001:db8:0:ab10::/64"
  # Zone 2, a /108: 20 host bits, kubeadm's limit for IPv6 Service ranges.
  serviceSubnet: "2001:db8:0:ab20::/108"
  dnsDomain: cluster.local
apiServer:
  # The ClusterIP, the kubernetes Service names, and ::1/localhost for an operator on a
  # control plane (docs/control-plane.md, "Certificate SANs").
  certSANs:
    - "2001:db8:0:ab20::1"
    - kubernetes
    - kubernetes.default
    - kubernetes.default.svc
    - kubernetes.default.svc.cluster.local
    - "::1"
    - localhost
  extraArgs:
    # Every address: the node's IPv6 and the ClusterIP on lo.
    - name: bind-address
      value: "::"
controllerManager:
  extraArgs:
    # Calico IPAM hands out pod blocks; exactly "false" also skips kubeadm's node-mask check.
    - name: allocate-node-cidrs
      value: "false"
    # Writable on Flatcar (/usr is read-only), the kubelet's volumePluginDir, with the
    # trailing slash Calico's flexVolumePath needs.
    - name: flex-volume-plugin-dir
      value: /var/lib/kubelet/volumeplugins/
---
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# Flatcar's containerd runs runc with SystemdCgroup = true.
cgroupDriver: systemd
# The default 0.0.0.0 listens on IPv4 only; the API servers reach kubelets over IPv6.
address: "::"
# The tenth Service address, kubeadm's CoreDNS address.
clusterDNS:
  - "2001:db8:0:ab20::a"
clusterDomain: cluster.local
# The IPv6 resolvers Ignition writes: Metal's resolvers are IPv4-only.
resolvConf: /etc/kubernetes/resolv.conf
volumePluginDir: /var/lib/kubelet/volumeplugins/
rotateCertificates: true
---
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
# Calico's Iptables data plane runs with it (docs/control-plane.md, "kube-proxy").
mode: iptables
bindAddress: "::"
healthzBindAddress: "[::]:10256"
# The pod range: ClusterIP traffic from elsewhere is masqueraded, which the API
# endpoint through another node relies on.
clusterCIDR: "2001:db8:0:ab10::/64"
`;

const joinKubeadmYaml = (hostname: string, controlPlane: boolean) => `
apiVersion: kubeadm.k8s.io/v1beta4
kind: JoinConfiguration
${nodeRegistration(hostname)}
discovery:
  # A kubeconfig naming the cluster CA file, which kubeadm checks the API server
  # against, and the node's own certificate, its only credential (no token).
  file:
    kubeConfigPath: /etc/kubernetes/discovery/kubeconfig
${
  controlPlane
    ? `controlPlane:
  localAPIEndpoint:
    advertiseAddress: "__NODE_IPV6__"
    bindPort: 443
`
    : ""
}
# Nodes boot alongside the first control plane and wait for it (and for Calico to
# announce the Service range) for an hour instead of kubeadm's 5 minutes.
timeouts:
  discovery: 20m0s
`;

/** The discovery kubeconfig of joining nodes: the API URL, the CA file and the node's own certificate and key files. */
const DISCOVERY_KUBECONFIG_YAML = `
apiVersion: v1
kind: Config
clusters:
  - name: v6fabric
    cluster:
      server: "https://[2001:db8:0:ab20::1]:443"
      certificate-authority: /etc/kubernetes/discovery/ca.crt
users:
  - name: node
    user:
      client-certificate: /etc/kubernetes/discovery/node.crt
      client-key: /etc/kubernetes/discovery/node.key
contexts:
  - name: discovery
    context:
      cluster: v6fabric
      user: node
current-context: discovery
`;

/** Where Ignition writes the kubeadm config (a boot template), and where the node renders it. */
const KUBEADM_TEMPLATE = "/etc/v6fabric/templates/etc/kubernetes/kubeadm.yaml";
const KUBEADM_CONFIG = "/etc/kubernetes/kubeadm.yaml";

// ---------------------------------------------------------------------------
// Reading the synthesized user data (Terraform references kept as text).
// ---------------------------------------------------------------------------

interface Device {
  readonly hostname: string;
  readonly config: IgnConfig;
  /** The expression inside a file's `${...}` source, if its whole contents are one reference. */
  reference(path: string): string | undefined;
  /** A file's text; the file must be fully known at synth. */
  text(path: string): string;
  file(path: string): IgnFile;
}

/** Each `${expr}` becomes a marker so the user data parses as JSON; the markers map back to the expressions. */
function readDevices(stack: TerraformJson): Device[] {
  return resourcesOf(stack, "metal_device").map(([, device]) => {
    const expressions: string[] = [];
    const json = parseTerraformTemplate(device.user_data as string)
      .map((part) => ("literal" in part ? part.literal : `@@REF${expressions.push(part.expression) - 1}@@`))
      .join("");
    const config = unpackMerges(JSON.parse(json) as IgnConfig);
    const file = (path: string) => {
      const found = (config.storage?.files ?? []).filter((f) => f.path === path);
      if (found.length !== 1) throw new Error(`${device.hostname}: expected one file ${path}, found ${found.length}`);
      return found[0];
    };
    return {
      hostname: device.hostname,
      config,
      file,
      reference(path: string) {
        const m = /^data:;base64,@@REF(\d+)@@$/.exec(file(path).contents?.source ?? "");
        return m ? expressions[Number(m[1])] : undefined;
      },
      text(path: string) {
        const f = file(path);
        if (/@@REF\d+@@/.test(f.contents!.source)) throw new Error(`${path} holds a Terraform reference`);
        return decodeDataUrl(f.contents!.source, f.contents!.compression).toString("utf8");
      },
    };
  });
}

const parse = (yaml: string) => parseYaml11Documents(yaml);

const defaults = readDevices(onlyStack(synthesize({})));
const threeControlPlanes = readDevices(onlyStack(synthesize({ CONTROL_PLANE_COUNT: "3", WORKER_COUNT: "2" })));
const device = (devices: Device[], hostname: string) => {
  const found = devices.find((d) => d.hostname === hostname);
  if (!found) throw new Error(`no device ${hostname} in ${devices.map((d) => d.hostname).join(", ")}`);
  return found;
};

describe("kubeadm.yaml of each node, field by field (default settings)", () => {
  test("the default cluster is v6fabric-cp-1 (init) and two workers", () => {
    expect(defaults.map((d) => d.hostname).sort()).toEqual(["v6fabric-cp-1", "v6fabric-worker-01", "v6fabric-worker-02"]);
  });

  test("first control plane: InitConfiguration, ClusterConfiguration, KubeletConfiguration, KubeProxyConfiguration", () => {
    expect(parse(device(defaults, "v6fabric-cp-1").text(KUBEADM_TEMPLATE))).toEqual(parse(INIT_KUBEADM_YAML));
    // The node count changes nothing in it.
    expect(parse(device(threeControlPlanes, "v6fabric-cp-1").text(KUBEADM_TEMPLATE))).toEqual(parse(INIT_KUBEADM_YAML));
  });

  test.each(["v6fabric-worker-01", "v6fabric-worker-02"])("worker %s: a JoinConfiguration that verifies the CA", (hostname) => {
    expect(parse(device(defaults, hostname).text(KUBEADM_TEMPLATE))).toEqual(parse(joinKubeadmYaml(hostname, false)));
  });

  test.each(["v6fabric-cp-2", "v6fabric-cp-3"])("further control plane %s (CONTROL_PLANE_COUNT=3): a JoinConfiguration with controlPlane on 443", (hostname) => {
    expect(parse(device(threeControlPlanes, hostname).text(KUBEADM_TEMPLATE))).toEqual(parse(joinKubeadmYaml(hostname, true)));
  });

  test("the config is a 0600 boot template, rendered to /etc/kubernetes/kubeadm.yaml, the file the first-boot unit passes kubeadm", () => {
    for (const d of [...defaults, ...threeControlPlanes]) {
      expect(d.file(KUBEADM_TEMPLATE).mode).toBe(0o600);
      const environment = unit(d.config, "v6fabric-kubeadm.service").contents!.split("\n").filter((l) => l.startsWith("Environment=KUBEADM_CONFIG="));
      expect(environment).toEqual([`Environment=KUBEADM_CONFIG=${KUBEADM_CONFIG}`]);
    }
  });

  test("joining nodes' discovery kubeconfig: the ClusterIP URL on 443, the CA file and the node's own certificate files", () => {
    for (const hostname of ["v6fabric-worker-01", "v6fabric-worker-02"]) {
      expect(parse(device(defaults, hostname).text("/etc/kubernetes/discovery/kubeconfig"))).toEqual(parse(DISCOVERY_KUBECONFIG_YAML));
    }
    expect(parse(device(threeControlPlanes, "v6fabric-cp-2").text("/etc/kubernetes/discovery/kubeconfig"))).toEqual(parse(DISCOVERY_KUBECONFIG_YAML));
  });

  test("the literals above are what a wrong value would not be (the comparison can fail)", () => {
    const init = device(defaults, "v6fabric-cp-1").text(KUBEADM_TEMPLATE);
    for (const [from, to] of [
      ["bindPort: 443", "bindPort: 6443"],
      ["ttl: 15m0s", "ttl: 0s"],
      ["mode: iptables", "mode: nftables"],
      ["value: \"false\"", "value: \"true\""],
    ]) {
      expect(init).toContain(from);
      expect(parse(init.replace(from, to))).not.toEqual(parse(INIT_KUBEADM_YAML));
    }
  });
});

// ---------------------------------------------------------------------------
// PKI: which Terraform value goes into which file.
// ---------------------------------------------------------------------------

/** kubeadm's names for its CAs' subjects (kubeadm `certs` phase: ca, front-proxy-ca, etcd/ca). */
const CA_COMMON_NAMES = { cluster: "kubernetes", frontProxy: "front-proxy-ca", etcd: "etcd-ca" } as const;

/** The synthesized trust material, identified by what it is, not by the construct's names. */
function trustMaterial(stack: TerraformJson) {
  const ref = (text: string) => /^\$\{(tls_private_key\.[\w-]+)\.private_key_pem\}$/.exec(text)?.[1];
  const selfSigned = resourcesOf(stack, "tls_self_signed_cert");
  const ca = (commonName: string) => {
    const found = selfSigned.filter(([, body]) => body.subject?.[0]?.common_name === commonName);
    expect(found).toHaveLength(1);
    const [[id, body]] = found;
    expect(body.is_ca_certificate).toBe(true);
    const key = ref(body.private_key_pem);
    expect(key).toBeDefined();
    return { cert: `tls_self_signed_cert.${id}.cert_pem`, key: `${key}.private_key_pem` };
  };
  // The service-account key pair: the one private key no certificate or request is made from.
  const used = new Set(
    [...resourcesOf(stack, "tls_self_signed_cert"), ...resourcesOf(stack, "tls_cert_request"), ...resourcesOf(stack, "tls_locally_signed_cert")].flatMap(([, body]) =>
      Object.values(body)
        .filter((v): v is string => typeof v === "string")
        .flatMap((v) => ref(v) ?? []),
    ),
  );
  const unused = resourcesOf(stack, "tls_private_key").filter(([id]) => !used.has(`tls_private_key.${id}`));
  expect(unused).toHaveLength(1);
  const [[saId, saKey]] = unused;
  // P-256 like the CAs: sa.key must be a key kube-apiserver and the controller manager accept.
  expect(saKey).toMatchObject({ algorithm: "ECDSA", ecdsa_curve: "P256" });
  return {
    cluster: ca(CA_COMMON_NAMES.cluster),
    frontProxy: ca(CA_COMMON_NAMES.frontProxy),
    etcd: ca(CA_COMMON_NAMES.etcd),
    serviceAccount: { key: `tls_private_key.${saId}.private_key_pem`, pub: `tls_private_key.${saId}.public_key_pem` },
  };
}

describe("PKI files: each path holds the right CA's certificate or key", () => {
  const stack = onlyStack(synthesize({ CONTROL_PLANE_COUNT: "3", WORKER_COUNT: "2" }));
  const devices = readDevices(stack);
  const t = trustMaterial(stack);
  // kubeadm's file names under its default certificatesDir, the files the HA guide lists
  // for manual certificate distribution (docs/control-plane.md, "PKI and verified joins").
  const expected: [path: string, mode: number, reference: string][] = [
    ["/etc/kubernetes/pki/ca.crt", 0o644, t.cluster.cert],
    ["/etc/kubernetes/pki/ca.key", 0o600, t.cluster.key],
    ["/etc/kubernetes/pki/front-proxy-ca.crt", 0o644, t.frontProxy.cert],
    ["/etc/kubernetes/pki/front-proxy-ca.key", 0o600, t.frontProxy.key],
    ["/etc/kubernetes/pki/etcd/ca.crt", 0o644, t.etcd.cert],
    ["/etc/kubernetes/pki/etcd/ca.key", 0o600, t.etcd.key],
    ["/etc/kubernetes/pki/sa.key", 0o600, t.serviceAccount.key],
    ["/etc/kubernetes/pki/sa.pub", 0o644, t.serviceAccount.pub],
  ];

  test("three distinct CAs and a service-account key", () => {
    const all = [t.cluster.cert, t.cluster.key, t.frontProxy.cert, t.frontProxy.key, t.etcd.cert, t.etcd.key, t.serviceAccount.key];
    expect(new Set(all).size).toBe(all.length);
  });

  test.each(["v6fabric-cp-1", "v6fabric-cp-2", "v6fabric-cp-3"])("control plane %s: exactly these files, modes and values, gzip'd", (hostname) => {
    const d = device(devices, hostname);
    const pki = (d.config.storage?.files ?? []).map((f) => f.path).filter((p) => p.startsWith("/etc/kubernetes/pki/"));
    expect(pki.sort()).toEqual(expected.map(([p]) => p).sort());
    for (const [path, mode, reference] of expected) {
      expect({ path, mode: d.file(path).mode, compression: d.file(path).contents?.compression, value: d.reference(path) }).toEqual({
        path,
        mode,
        compression: "gzip",
        value: `base64gzip(${reference})`,
      });
    }
  });

  test.each(["v6fabric-cp-2", "v6fabric-cp-3", "v6fabric-worker-01", "v6fabric-worker-02"])("joining node %s: the discovery CA is the cluster CA's certificate", (hostname) => {
    const d = device(devices, hostname);
    expect({ mode: d.file("/etc/kubernetes/discovery/ca.crt").mode, value: d.reference("/etc/kubernetes/discovery/ca.crt") }).toEqual({
      mode: 0o644,
      value: `base64gzip(${t.cluster.cert})`,
    });
  });

  test("workers get no PKI file, and no private key but their own join key", () => {
    for (const hostname of ["v6fabric-worker-01", "v6fabric-worker-02"]) {
      const d = device(devices, hostname);
      expect((d.config.storage?.files ?? []).map((f) => f.path).filter((p) => p.startsWith("/etc/kubernetes/pki"))).toEqual([]);
      const userData = String(resourcesOf(stack, "metal_device").find(([, b]) => b.hostname === hostname)![1].user_data);
      expect([...userData.matchAll(/tls_private_key\.([\w-]+)\.private_key_pem/g)].map((m) => m[1])).toEqual([expect.stringMatching(new RegExp(`^control-plane_${hostname}-join-key_`))]);
    }
  });

  test("joining nodes' credential: their own certificate (0644) and key (0600), gzip'd whole files; no token file anywhere", () => {
    for (const d of devices) {
      expect(d.config.storage?.files?.some((f) => f.path === "/etc/kubernetes/bootstrap-token")).toBe(false);
      if (d.hostname === "v6fabric-cp-1") continue;
      expect(d.file("/etc/kubernetes/discovery/node.crt").mode).toBe(0o644);
      expect(d.reference("/etc/kubernetes/discovery/node.crt")).toMatch(new RegExp(`^base64gzip\\(tls_locally_signed_cert\\.control-plane_${d.hostname}-join-cert_[0-9A-F]+\\.cert_pem\\)$`));
      expect(d.file("/etc/kubernetes/discovery/node.key").mode).toBe(0o600);
      expect(d.reference("/etc/kubernetes/discovery/node.key")).toMatch(new RegExp(`^base64gzip\\(tls_private_key\\.control-plane_${d.hostname}-join-key_[0-9A-F]+\\.private_key_pem\\)$`));
    }
  });

  test("the CAs: ten years, CA usages, P-256 keys", () => {
    for (const [, body] of resourcesOf(stack, "tls_self_signed_cert")) {
      // kubeadm's own CAs live ten years.
      expect(body.validity_period_hours).toBe(87600);
      expect([...body.allowed_uses].sort()).toEqual(["cert_signing", "crl_signing", "digital_signature", "key_encipherment"]);
    }
    for (const [, body] of resourcesOf(stack, "tls_private_key")) expect(body).toMatchObject({ algorithm: "ECDSA", ecdsa_curve: "P256" });
  });
});
