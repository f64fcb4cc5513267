/**
 * A bare Kubernetes API server for tests that need a real one but no nodes: etcd and
 * kube-apiserver as built by `npm run tools` (kubernetes group), unprivileged, on ::1
 * with free ports, a throwaway CA (emulators/tls.ts) and an admin client certificate.
 * Authorization is AlwaysAllow: what such tests check is what the API server accepts
 * and stores, not who may change it. Stopped by pid (only its own processes).
 */
import { ChildProcess, spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { issueCertificates } from "../../emulators/tls";
import { etcdBinary, kubernetesBinary } from "../../rehearsal/tools";

export interface LocalApiServer {
  readonly url: string;
  /** PEM texts, as the cluster stack's outputs carry them. */
  readonly caPem: string;
  /** The admin client certificate and key (PEM). */
  readonly clientCertPem: string;
  readonly clientKeyPem: string;
  /** A kubeconfig with the admin credential inline (data fields), as admin_kubeconfig is. */
  readonly kubeconfigText: string;
  /** Where that kubeconfig is written, for kubectl. */
  readonly kubeconfig: string;
  kubectl(args: readonly string[], input?: string): { status: number; stdout: string; stderr: string };
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "::1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function start(command: string, args: string[], log: string): ChildProcess {
  const out = fs.openSync(log, "a");
  const child = spawn(command, args, { stdio: ["ignore", out, out] });
  fs.closeSync(out);
  return child;
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
  await exited;
  clearTimeout(timer);
}

export async function startLocalApiServer(dir: string): Promise<LocalApiServer> {
  fs.mkdirSync(dir, { recursive: true });
  const pki = path.join(dir, "pki");
  issueCertificates(pki, "v6fabric-test-ca", [
    { name: "server", commonName: "kube-apiserver", extensions: ["subjectAltName=IP:::1", "extendedKeyUsage=serverAuth"] },
    { name: "admin", commonName: "admin", extensions: ["extendedKeyUsage=clientAuth"] },
  ]);
  const file = (name: string) => path.join(pki, name);
  spawnSync("openssl", ["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", file("sa.key")]);
  spawnSync("openssl", ["ec", "-in", file("sa.key"), "-pubout", "-out", file("sa.pub")]);
  const [etcdClient, etcdPeer, apiPort] = [await freePort(), await freePort(), await freePort()];
  const etcd = start(
    etcdBinary(),
    [
      "--data-dir", path.join(dir, "etcd"),
      "--listen-client-urls", `http://[::1]:${etcdClient}`, "--advertise-client-urls", `http://[::1]:${etcdClient}`,
      "--listen-peer-urls", `http://[::1]:${etcdPeer}`, "--initial-advertise-peer-urls", `http://[::1]:${etcdPeer}`,
      "--initial-cluster", `default=http://[::1]:${etcdPeer}`,
    ],
    path.join(dir, "etcd.log"),
  );
  const apiserver = start(
    kubernetesBinary("kube-apiserver"),
    [
      `--etcd-servers=http://[::1]:${etcdClient}`, `--secure-port=${apiPort}`, "--bind-address=::1", "--advertise-address=::1",
      `--tls-cert-file=${file("server.crt")}`, `--tls-private-key-file=${file("server.key")}`, `--client-ca-file=${file("ca.crt")}`,
      "--service-account-issuer=https://kubernetes.default.svc", `--service-account-key-file=${file("sa.pub")}`, `--service-account-signing-key-file=${file("sa.key")}`,
      "--service-cluster-ip-range=fd00:96::/108", "--authorization-mode=AlwaysAllow",
    ],
    path.join(dir, "apiserver.log"),
  );
  const url = `https://[::1]:${apiPort}`;
  const b64 = (name: string) => fs.readFileSync(file(name)).toString("base64");
  const kubeconfigText = [
    "apiVersion: v1",
    "kind: Config",
    "clusters:",
    `- name: local\n  cluster:\n    server: "${url}"\n    certificate-authority-data: ${b64("ca.crt")}`,
    "users:",
    `- name: admin\n  user:\n    client-certificate-data: ${b64("admin.crt")}\n    client-key-data: ${b64("admin.key")}`,
    "contexts:",
    "- name: local\n  context:\n    cluster: local\n    user: admin",
    "current-context: local",
    "",
  ].join("\n");
  const kubeconfig = path.join(dir, "kubeconfig");
  fs.writeFileSync(kubeconfig, kubeconfigText, { mode: 0o600 });
  const kubectl = (args: readonly string[], input?: string) => {
    const r = spawnSync(kubernetesBinary("kubectl"), ["--kubeconfig", kubeconfig, ...args], { encoding: "utf8", input });
    return { status: r.status ?? -1, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
  };
  const stop = async () => {
    await stopProcess(apiserver);
    await stopProcess(etcd);
  };
  const deadline = Date.now() + 60_000;
  while (kubectl(["get", "--raw", "/readyz"]).status !== 0) {
    if (Date.now() > deadline || apiserver.exitCode !== null) {
      await stop();
      throw new Error(`the local API server did not become ready: ${fs.readFileSync(path.join(dir, "apiserver.log"), "utf8").split("\n").slice(-10).join("\n")}`);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  const pem = (name: string) => fs.readFileSync(file(name), "utf8");
  return { url, caPem: pem("ca.crt"), clientCertPem: pem("admin.crt"), clientKeyPem: pem("admin.key"), kubeconfigText, kubeconfig, kubectl, stop };
}
