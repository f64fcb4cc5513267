/**
 * The pieces of the rehearsal's kubelet that need no root (rehearsal/kubelet.ts,
 * rehearsal/units.ts): the kubelet's command line as systemd would build it from the
 * node's own kubelet.service and kubeadm's drop-in, and the rehearsal's overrides,
 * validated strictly against the KubeletConfiguration schema. That the kubelet runs
 * with them is the control-plane rehearsal's part.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import YAML from "yaml";
import { containerdConfig, kubeletOverrides } from "../rehearsal/kubelet";
import type { RehearsalNode } from "../rehearsal/nodes";
import { expandExecStart, parseEnvironmentFile, readUnit, unitEnvironment } from "../rehearsal/units";
import { validateKubeadmFile } from "./support/kubeadm-validate";

const IGNITION_UNITS = path.join(__dirname, "..", "ignition", "units");

let root: string;
beforeAll(() => {
  // A node root with the unit files as Ignition writes them (ignition/units).
  root = fs.mkdtempSync(path.join(os.tmpdir(), "v6fabric-test-kubelet-"));
  const system = path.join(root, "etc", "systemd", "system");
  fs.mkdirSync(path.join(system, "kubelet.service.d"), { recursive: true });
  fs.copyFileSync(path.join(IGNITION_UNITS, "kubelet.service"), path.join(system, "kubelet.service"));
  fs.copyFileSync(path.join(IGNITION_UNITS, "10-kubeadm.conf"), path.join(system, "kubelet.service.d", "10-kubeadm.conf"));
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const node = () => ({ hostPath: (p: string) => path.join(root, p) }) as unknown as RehearsalNode;

function write(nodePath: string, text: string): void {
  fs.mkdirSync(path.dirname(path.join(root, nodePath)), { recursive: true });
  fs.writeFileSync(path.join(root, nodePath), text);
}

test("before kubeadm ran, the kubelet's command line is the drop-in's, the optional environment files skipped", () => {
  const unit = readUnit(root, "kubelet.service");
  expect(unit.environmentFiles).toEqual([
    { path: "/var/lib/kubelet/kubeadm-flags.env", optional: true },
    { path: "/etc/default/kubelet", optional: true },
  ]);
  expect(expandExecStart(unit.execStart, unitEnvironment(node(), unit))).toEqual([
    "/opt/bin/kubelet",
    "--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf",
    "--kubeconfig=/etc/kubernetes/kubelet.conf",
    "--config=/var/lib/kubelet/config.yaml",
  ]);
});

test("after kubeadm, its flags file and the operator's /etc/default/kubelet extend it, word by word", () => {
  // What kubeadm 1.36 writes (quoted), and what the rehearsal writes (unquoted).
  write("/var/lib/kubelet/kubeadm-flags.env", 'KUBELET_KUBEADM_ARGS="--node-ip=2001:db8:0:ab00::1 --hostname-override=v6fabric-cp-1"\n');
  write("/etc/default/kubelet", "# operator flags\nKUBELET_EXTRA_ARGS=--config-dir=/etc/v6fabric-rehearsal/kubelet.conf.d\n");
  const unit = readUnit(root, "kubelet.service");
  expect(expandExecStart(unit.execStart, unitEnvironment(node(), unit)).slice(4)).toEqual([
    "--node-ip=2001:db8:0:ab00::1",
    "--hostname-override=v6fabric-cp-1",
    "--config-dir=/etc/v6fabric-rehearsal/kubelet.conf.d",
  ]);
});

test.each([
  ['A="x y"', { A: "x y" }],
  ["A='x'", { A: "x" }],
  ["A=x=y", { A: "x=y" }],
  ["# A=1\n; B=2\n\nC = 3", { C: "3" }],
])("EnvironmentFile line %j", (text, expected) => {
  expect(parseEnvironmentFile(text)).toEqual(expected);
});

test("$NAME as a whole word splits into the value's words or vanishes; ${NAME} inside a word is replaced", () => {
  expect(expandExecStart(["run", "$A", "$EMPTY", "$UNSET", "--x=${B}y"], { A: "1  2", EMPTY: "", B: "b" })).toEqual(["run", "1", "2", "--x=by"]);
});

test("the rehearsal's kubelet overrides are KubeletConfiguration fields, strictly valid, and only the four this machine needs", () => {
  const [doc] = validateKubeadmFile(YAML.stringify(kubeletOverrides("/v6rtest-n0")));
  expect(doc).toEqual({
    apiVersion: "kubelet.config.k8s.io/v1beta1",
    kind: "KubeletConfiguration",
    cgroupDriver: "cgroupfs",
    failCgroupV1: false,
    cgroupRoot: "/v6rtest-n0",
    evictionHard: { "memory.available": "100Mi", "nodefs.available": "2Gi", "imagefs.available": "2Gi", "nodefs.inodesFree": "5%", "imagefs.inodesFree": "5%" },
  });
});

test("containerd's config: Flatcar's CRI socket, runc without systemd cgroups, kubeadm's pause image, no registry", () => {
  const text = containerdConfig();
  expect(text).toContain('address = "/run/containerd/containerd.sock"');
  expect(text).toMatch(/SystemdCgroup = false/);
  expect(text).toContain('sandbox = "registry.k8s.io/pause:3.10.2"');
  expect(text).toContain("restrict_oom_score_adj = true");
  expect(text).toContain('BinaryName = "/usr/sbin/runc"');
  expect(text).toContain('config_path = "/etc/v6fabric-rehearsal/containerd-certs.d"');
});
