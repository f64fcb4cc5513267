import { Construct } from "constructs";
import { Fn, TerraformOutput, TerraformStack } from "cdktf";
import { CertRequest } from "@cdktf/provider-tls/lib/cert-request";
import { LocallySignedCert } from "@cdktf/provider-tls/lib/locally-signed-cert";
import { PrivateKey } from "@cdktf/provider-tls/lib/private-key";
import { TlsProvider } from "@cdktf/provider-tls/lib/provider";
import { SelfSignedCert } from "@cdktf/provider-tls/lib/self-signed-cert";
import type { BootRole, NodeFile } from "../ignition";
import type { AddressPlan } from "../lib/address-plan";
import {
  ADMIN_GROUP,
  ADMIN_USER,
  CONTROL_PLANE_PKI_FILES,
  DISCOVERY_CA_PATH,
  DISCOVERY_KUBECONFIG_PATH,
  DISCOVERY_NODE_CERT_PATH,
  DISCOVERY_NODE_KEY_PATH,
  NODES_GROUP,
  ProxyMode,
  nodeUser,
  apiServerUrl,
  directApiServerUrl,
  renderAdminKubeconfig,
  renderDiscoveryKubeconfig,
  renderKubeadmConfig,
} from "../lib/kubeadm";

export interface KubeadmControlPlaneProps {
  readonly plan: AddressPlan;
  readonly clusterName: string;
  /** Kubernetes release without the leading "v", e.g. 1.36.3. */
  readonly kubernetesVersion: string;
  readonly clusterDomain: string;
  /**
   * resolv.conf the kubelet gives pods with dnsPolicy Default.
   * @default - lib/kubeadm.ts DEFAULT_RESOLV_CONF
   */
  readonly resolvConf?: string;
  /**
   * kube-proxy mode.
   * @default "iptables"
   */
  readonly proxyMode?: ProxyMode;
}

/** Terraform output names: a contract with users and the report (issue 7). */
export const CONTROL_PLANE_OUTPUTS = {
  apiServerUrl: "api_server_url",
  controlPlaneApiServerUrls: "control_plane_api_server_urls",
  clusterCaCertificate: "cluster_ca_certificate",
  adminKubeconfig: "admin_kubeconfig",
} as const;

/** Certificate authorities live ten years, as kubeadm's own do. */
const CA_VALIDITY_HOURS = 10 * 365 * 24;
/**
 * Client certificates made here (the admin's, and each node's join credential) live a
 * year and are re-issued by any apply in their last 30 days. A node's own certificate
 * is used once, for its TLS bootstrap; the kubelet then holds certificates it rotates itself.
 */
const CLIENT_CERT_VALIDITY_HOURS = 365 * 24;
const CLIENT_CERT_EARLY_RENEWAL_HOURS = 30 * 24;

/**
 * The cluster's trust material, made in Terraform so no node has to hand anything to
 * another: three CAs (cluster, front-proxy, etcd), the service-account key pair, an
 * admin client certificate, and for every joining node a client certificate for its
 * own name, its join credential. It renders each node's kubeadm config and files, and
 * exposes the API endpoint, the CA and an admin kubeconfig as outputs (the kubeconfig
 * sensitive).
 *
 * Private keys exist only as Terraform references here: cdk.tf.json holds
 * `${tls_private_key...}` expressions, never values (docs/control-plane.md, "Secrets").
 * Each secret reaches a node as a whole file.
 */
export class KubeadmControlPlane extends Construct {
  /** `https://[kubernetes ClusterIP]:443`. */
  readonly apiServerUrl: string;
  /** PEM of the cluster CA (a Terraform reference; not secret). */
  readonly clusterCaCertificatePem: string;
  /** The admin client certificate and key of the admin_kubeconfig output (Terraform references; the key is sensitive). */
  readonly adminCredential: { readonly certPem: string; readonly keyPem: string };

  private readonly props: KubeadmControlPlaneProps;
  private readonly controlPlaneFiles: readonly NodeFile[];
  private readonly discoveryFiles: readonly NodeFile[];
  private readonly clusterCa: CertificateAuthority;

  constructor(scope: Construct, id: string, props: KubeadmControlPlaneProps) {
    super(scope, id);
    this.props = props;
    ensureProviders(this);

    const clusterCa = new CertificateAuthority(this, "cluster-ca", "kubernetes");
    const frontProxyCa = new CertificateAuthority(this, "front-proxy-ca", "front-proxy-ca");
    const etcdCa = new CertificateAuthority(this, "etcd-ca", "etcd-ca");
    const serviceAccountKey = ecdsaKey(this, "service-account-key");
    this.clusterCaCertificatePem = clusterCa.certificate.certPem;
    this.apiServerUrl = apiServerUrl(props.plan);
    this.clusterCa = clusterCa;

    const files = CONTROL_PLANE_PKI_FILES;
    this.controlPlaneFiles = [
      pem(files.clusterCaCert, clusterCa.certificate.certPem, 0o644),
      pem(files.clusterCaKey, clusterCa.key.privateKeyPem, 0o600),
      pem(files.frontProxyCaCert, frontProxyCa.certificate.certPem, 0o644),
      pem(files.frontProxyCaKey, frontProxyCa.key.privateKeyPem, 0o600),
      pem(files.etcdCaCert, etcdCa.certificate.certPem, 0o644),
      pem(files.etcdCaKey, etcdCa.key.privateKeyPem, 0o600),
      pem(files.serviceAccountKey, serviceAccountKey.privateKeyPem, 0o600),
      pem(files.serviceAccountPublicKey, serviceAccountKey.publicKeyPem, 0o644),
    ];
    this.discoveryFiles = [
      pem(DISCOVERY_CA_PATH, clusterCa.certificate.certPem, 0o644),
      { path: DISCOVERY_KUBECONFIG_PATH, mode: 0o644, text: renderDiscoveryKubeconfig(props.plan, props.clusterName) },
    ];

    const { key: adminKey, certificate: adminCert } = clientCertificate(this, "admin", clusterCa, ADMIN_USER, ADMIN_GROUP);
    this.adminCredential = { certPem: adminCert.certPem, keyPem: adminKey.privateKeyPem };

    output(this, CONTROL_PLANE_OUTPUTS.apiServerUrl, {
      value: this.apiServerUrl,
      description: "Kubernetes API URL: the kubernetes Service ClusterIP, announced over BGP by every node (docs/control-plane.md)",
    });
    output(this, CONTROL_PLANE_OUTPUTS.clusterCaCertificate, {
      value: this.clusterCaCertificatePem,
      description: "PEM of the cluster CA that signs the API server certificates",
    });
    output(this, CONTROL_PLANE_OUTPUTS.adminKubeconfig, {
      value: renderAdminKubeconfig({
        clusterName: props.clusterName,
        server: this.apiServerUrl,
        certificateAuthorityData: Fn.base64encode(clusterCa.certificate.certPem),
        clientCertificateData: Fn.base64encode(adminCert.certPem),
        clientKeyData: Fn.base64encode(adminKey.privateKeyPem),
      }),
      sensitive: true,
      description: `Admin kubeconfig (group ${ADMIN_GROUP}): terraform output -raw admin_kubeconfig > kubeconfig`,
    });
  }

  /** /etc/kubernetes/kubeadm.yaml for one node. */
  kubeadmConfig(role: BootRole, hostname: string): string {
    return renderKubeadmConfig({
      role,
      hostname,
      plan: this.props.plan,
      clusterName: this.props.clusterName,
      kubernetesVersion: this.props.kubernetesVersion,
      clusterDomain: this.props.clusterDomain,
      resolvConf: this.props.resolvConf,
      proxyMode: this.props.proxyMode,
    });
  }

  /**
   * Files one node needs besides kubeadm.yaml: the CAs and service-account keys on
   * control planes (init included); on every joining node the discovery kubeconfig and
   * CA, and its join credential, a client certificate and key for its own node name
   * only. Call it once per node: it makes that node's key and certificate.
   */
  nodeFiles(role: BootRole, hostname: string): NodeFile[] {
    if (role === "init") return [...this.controlPlaneFiles];
    const own = clientCertificate(this, `${hostname}-join`, this.clusterCa, nodeUser(hostname), NODES_GROUP);
    const credential = [pem(DISCOVERY_NODE_CERT_PATH, own.certificate.certPem, 0o644), pem(DISCOVERY_NODE_KEY_PATH, own.key.privateKeyPem, 0o600)];
    return role === "control-plane" ? [...this.controlPlaneFiles, ...this.discoveryFiles, ...credential] : [...this.discoveryFiles, ...credential];
  }

  /** Adds the direct API URLs of the control planes (their public IPv6, known after apply) as an output. */
  addControlPlaneAddresses(addresses: readonly string[]): void {
    output(this, CONTROL_PLANE_OUTPUTS.controlPlaneApiServerUrls, {
      value: addresses.map(directApiServerUrl),
      description: "Direct API URLs of each control plane, for when the ClusterIP route is not up (the certificates cover them)",
    });
  }
}

class CertificateAuthority extends Construct {
  readonly key: PrivateKey;
  readonly certificate: SelfSignedCert;

  constructor(scope: Construct, id: string, commonName: string) {
    super(scope, id);
    this.key = ecdsaKey(this, "key");
    this.certificate = new SelfSignedCert(this, "cert", {
      privateKeyPem: this.key.privateKeyPem,
      subject: [{ commonName }],
      isCaCertificate: true,
      setSubjectKeyId: true,
      validityPeriodHours: CA_VALIDITY_HOURS,
      allowedUses: ["cert_signing", "crl_signing", "digital_signature", "key_encipherment"],
    });
  }
}

/**
 * PEMs travel gzip-compressed (Terraform's base64gzip; Ignition decompresses): a P-256
 * certificate shrinks by about a fifth, which user data needs (lib/user-data-size.ts).
 */
function pem(path: string, text: string, mode: number): NodeFile {
  return { path, mode, base64: Fn.base64gzip(text), gzip: true };
}

/** A key and a client certificate for `commonName` in `group`, signed by `ca`. */
function clientCertificate(scope: Construct, id: string, ca: CertificateAuthority, commonName: string, group: string): { key: PrivateKey; certificate: LocallySignedCert } {
  const key = ecdsaKey(scope, `${id}-key`);
  const request = new CertRequest(scope, `${id}-csr`, { privateKeyPem: key.privateKeyPem, subject: [{ commonName, organization: group }] });
  const certificate = new LocallySignedCert(scope, `${id}-cert`, {
    certRequestPem: request.certRequestPem,
    caPrivateKeyPem: ca.key.privateKeyPem,
    caCertPem: ca.certificate.certPem,
    validityPeriodHours: CLIENT_CERT_VALIDITY_HOURS,
    earlyRenewalHours: CLIENT_CERT_EARLY_RENEWAL_HOURS,
    allowedUses: ["digital_signature", "key_encipherment", "client_auth"],
  });
  return { key, certificate };
}

/** ECDSA P-256, matching ClusterConfiguration.encryptionAlgorithm; small keys keep user data small. */
function ecdsaKey(scope: Construct, id: string): PrivateKey {
  return new PrivateKey(scope, id, { algorithm: "ECDSA", ecdsaCurve: "P256" });
}

function output(scope: Construct, name: string, config: { value: unknown; description: string; sensitive?: boolean }): void {
  new TerraformOutput(scope, name, config).overrideLogicalId(name);
}

/** One default tls provider per stack, whoever asks first. */
function ensureProviders(scope: Construct): void {
  const stack = TerraformStack.of(scope);
  if (!stack.node.children.some((c) => c instanceof TlsProvider)) new TlsProvider(stack, "tls", {});
}
