import { Construct } from "constructs";
import { Fn, TerraformOutput, TerraformStack, TerraformVariable, Token } from "cdktf";
import { CertRequest } from "@cdktf/provider-tls/lib/cert-request";
import { LocallySignedCert } from "@cdktf/provider-tls/lib/locally-signed-cert";
import { PrivateKey } from "@cdktf/provider-tls/lib/private-key";
import { TlsProvider } from "@cdktf/provider-tls/lib/provider";
import { SelfSignedCert } from "@cdktf/provider-tls/lib/self-signed-cert";
import { Password } from "@cdktf/provider-random/lib/password";
import { RandomProvider } from "@cdktf/provider-random/lib/provider";
import { StringResource } from "@cdktf/provider-random/lib/string-resource";
import { NODE_PATHS } from "../ignition";
import type { BootRole, NodeFile } from "../ignition";
import type { AddressPlan } from "../lib/address-plan";
import { BOOT_VALUES } from "../lib/boot-values";
import {
  ADMIN_GROUP,
  ADMIN_USER,
  CONTROL_PLANE_PKI_FILES,
  DISCOVERY_CA_PATH,
  DISCOVERY_KUBECONFIG_PATH,
  ProxyMode,
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

/** Name of the optional Terraform variable (set it as TF_VAR_kubeadm_bootstrap_token). */
export const BOOTSTRAP_TOKEN_VARIABLE = "kubeadm_bootstrap_token";

/** Terraform output names: a contract with users and the report (issue 7). */
export const CONTROL_PLANE_OUTPUTS = {
  apiServerUrl: "api_server_url",
  controlPlaneApiServerUrls: "control_plane_api_server_urls",
  clusterCaCertificate: "cluster_ca_certificate",
  adminKubeconfig: "admin_kubeconfig",
} as const;

/** Certificate authorities live ten years, as kubeadm's own do. */
const CA_VALIDITY_HOURS = 10 * 365 * 24;
/** The admin client certificate lives a year and is re-issued by any apply in its last 30 days. */
const ADMIN_CERT_VALIDITY_HOURS = 365 * 24;
const ADMIN_CERT_EARLY_RENEWAL_HOURS = 30 * 24;

/**
 * The cluster's trust material, made in Terraform so no node has to hand anything to
 * another: three CAs (cluster, front-proxy, etcd), the service-account key pair, the
 * bootstrap token, and an admin client certificate. It renders each node's kubeadm
 * config and files, and exposes the API endpoint, the CA and an admin kubeconfig as
 * outputs (the kubeconfig sensitive).
 *
 * Private keys and the token exist only as Terraform references here: cdk.tf.json
 * holds `${tls_private_key...}` expressions, never values (docs/control-plane.md, "Secrets").
 * Each secret reaches a node as a whole file; the kubeadm config holds only the token's
 * boot placeholder, which the node fills in from NODE_PATHS.bootstrapTokenFile.
 */
export class KubeadmControlPlane extends Construct {
  /** The bootstrap token (a Terraform reference): TF_VAR_kubeadm_bootstrap_token when set, else generated. */
  readonly bootstrapToken: string;
  /** `https://[kubernetes ClusterIP]:443`. */
  readonly apiServerUrl: string;
  /** PEM of the cluster CA (a Terraform reference; not secret). */
  readonly clusterCaCertificatePem: string;

  private readonly props: KubeadmControlPlaneProps;
  private readonly controlPlaneFiles: readonly NodeFile[];
  private readonly discoveryFiles: readonly NodeFile[];
  private readonly tokenFile: NodeFile;

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
    this.bootstrapToken = this.makeBootstrapToken();
    this.tokenFile = { path: NODE_PATHS.bootstrapTokenFile, mode: 0o600, base64: Fn.base64encode(this.bootstrapToken) };

    // PEMs travel gzip-compressed (Terraform's base64gzip; Ignition decompresses): a
    // P-256 certificate shrinks by about a fifth, which the first control plane's
    // user data needs (lib/user-data-size.ts).
    const pem = (path: string, text: string, mode: number): NodeFile => ({ path, mode, base64: Fn.base64gzip(text), gzip: true });
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

    const adminKey = ecdsaKey(this, "admin-key");
    const adminCsr = new CertRequest(this, "admin-csr", {
      privateKeyPem: adminKey.privateKeyPem,
      subject: [{ commonName: ADMIN_USER, organization: ADMIN_GROUP }],
    });
    const adminCert = new LocallySignedCert(this, "admin-cert", {
      certRequestPem: adminCsr.certRequestPem,
      caPrivateKeyPem: clusterCa.key.privateKeyPem,
      caCertPem: clusterCa.certificate.certPem,
      validityPeriodHours: ADMIN_CERT_VALIDITY_HOURS,
      earlyRenewalHours: ADMIN_CERT_EARLY_RENEWAL_HOURS,
      allowedUses: ["digital_signature", "key_encipherment", "client_auth"],
    });

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

  /** /etc/kubernetes/kubeadm.yaml for one node: the bootstrap token as its boot placeholder, filled in on the node from the token file. */
  kubeadmConfig(role: BootRole, hostname: string): string {
    return renderKubeadmConfig({
      role,
      hostname,
      plan: this.props.plan,
      clusterName: this.props.clusterName,
      kubernetesVersion: this.props.kubernetesVersion,
      clusterDomain: this.props.clusterDomain,
      bootstrapToken: BOOT_VALUES.bootstrapToken,
      resolvConf: this.props.resolvConf,
      proxyMode: this.props.proxyMode,
    });
  }

  /**
   * Files one node needs besides kubeadm.yaml: the bootstrap token on every node (its
   * kubeadm config refers to it), the CAs and service-account keys on control planes
   * (init included), the discovery kubeconfig and CA on every joining node.
   */
  nodeFiles(role: BootRole): NodeFile[] {
    switch (role) {
      case "init":
        return [this.tokenFile, ...this.controlPlaneFiles];
      case "control-plane":
        return [this.tokenFile, ...this.controlPlaneFiles, ...this.discoveryFiles];
      case "worker":
        return [this.tokenFile, ...this.discoveryFiles];
    }
  }

  /** Adds the direct API URLs of the control planes (their public IPv6, known after apply) as an output. */
  addControlPlaneAddresses(addresses: readonly string[]): void {
    output(this, CONTROL_PLANE_OUTPUTS.controlPlaneApiServerUrls, {
      value: addresses.map(directApiServerUrl),
      description: "Direct API URLs of each control plane, for when the ClusterIP route is not up (the certificates cover them)",
    });
  }

  /**
   * TF_VAR_kubeadm_bootstrap_token when set; otherwise a token made by the random
   * provider. The secret part is a random_password, so Terraform treats it (and every
   * user_data holding it) as sensitive.
   */
  private makeBootstrapToken(): string {
    const variable = new TerraformVariable(this, BOOTSTRAP_TOKEN_VARIABLE, {
      type: "string",
      default: "",
      nullable: false,
      sensitive: true,
      description: "Optional kubeadm bootstrap token ([a-z0-9]{6}.[a-z0-9]{16}); empty = generated by Terraform",
      validation: [
        {
          condition: `\${var.${BOOTSTRAP_TOKEN_VARIABLE} == "" || can(regex("^[a-z0-9]{6}\\\\.[a-z0-9]{16}$", var.${BOOTSTRAP_TOKEN_VARIABLE}))}`,
          errorMessage: `${BOOTSTRAP_TOKEN_VARIABLE} must be empty (Terraform generates one) or a kubeadm token: 6 then 16 characters from a-z and 0-9, joined by a dot`,
        },
      ],
    });
    variable.overrideLogicalId(BOOTSTRAP_TOKEN_VARIABLE);
    const tokenChars = { special: false, upper: false, lower: true, numeric: true };
    const tokenId = new StringResource(this, "bootstrap-token-id", { length: 6, ...tokenChars });
    const tokenSecret = new Password(this, "bootstrap-token-secret", { length: 16, ...tokenChars });
    // coalesce() skips the empty default: the variable wins when set.
    return Token.asString(Fn.coalesce([variable.stringValue, Fn.join(".", [tokenId.result, tokenSecret.result])]));
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

/** ECDSA P-256, matching ClusterConfiguration.encryptionAlgorithm; small keys keep user data small. */
function ecdsaKey(scope: Construct, id: string): PrivateKey {
  return new PrivateKey(scope, id, { algorithm: "ECDSA", ecdsaCurve: "P256" });
}

function output(scope: Construct, name: string, config: { value: unknown; description: string; sensitive?: boolean }): void {
  new TerraformOutput(scope, name, config).overrideLogicalId(name);
}

/** One default tls and random provider per stack, whoever asks first. */
function ensureProviders(scope: Construct): void {
  const stack = TerraformStack.of(scope);
  const children = stack.node.children;
  if (!children.some((c) => c instanceof TlsProvider)) new TlsProvider(stack, "tls", {});
  if (!children.some((c) => c instanceof RandomProvider)) new RandomProvider(stack, "random", {});
}
