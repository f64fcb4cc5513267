/**
 * The rehearsal's container images (rehearsal/images.ts): an OCI image layout in a tar
 * archive, checked here by unpacking it with tar and hashing every blob with node's own
 * crypto, as an OCI reader (`ctr images import`) does. That containerd imports them and
 * the kubelet runs them is the control-plane rehearsal's part.
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { rehearsalImages, writeImageArchive } from "../rehearsal/images";

let work: string;
beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), "v6fabric-test-images-"));
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

function untar(archive: string, into: string): void {
  fs.mkdirSync(into, { recursive: true });
  const result = spawnSync("tar", ["-xf", archive, "-C", into], { encoding: "utf8" });
  expect(result.stderr).toBe("");
}

const sha256 = (bytes: Buffer) => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;

test("an image archive is an OCI layout naming the full reference, whose blobs match their digests and whose layer holds the program", () => {
  const program = path.join(work, "program");
  fs.writeFileSync(program, "#!/bin/sh\necho rehearsal\n");
  const archive = path.join(work, "image.tar");
  writeImageArchive({ reference: "registry.k8s.io/kube-apiserver:v1.36.3", files: { "/usr/local/bin/kube-apiserver": program } }, archive);

  const layout = path.join(work, "layout");
  untar(archive, layout);
  expect(JSON.parse(fs.readFileSync(path.join(layout, "oci-layout"), "utf8"))).toEqual({ imageLayoutVersion: "1.0.0" });
  const blob = (digest: string) => fs.readFileSync(path.join(layout, "blobs", "sha256", digest.replace("sha256:", "")));
  const index = JSON.parse(fs.readFileSync(path.join(layout, "index.json"), "utf8"));
  expect(index.manifests).toHaveLength(1);
  const entry = index.manifests[0];
  expect(entry.annotations).toEqual({ "io.containerd.image.name": "registry.k8s.io/kube-apiserver:v1.36.3", "org.opencontainers.image.ref.name": "v1.36.3" });
  expect(entry.mediaType).toBe("application/vnd.oci.image.manifest.v1+json");

  // Every descriptor's digest and size are those of the blob it points at.
  const manifestBytes = blob(entry.digest);
  expect([sha256(manifestBytes), manifestBytes.length]).toEqual([entry.digest, entry.size]);
  const manifest = JSON.parse(manifestBytes.toString());
  const configBytes = blob(manifest.config.digest);
  expect([sha256(configBytes), configBytes.length]).toEqual([manifest.config.digest, manifest.config.size]);
  expect(manifest.layers).toHaveLength(1);
  const layerBytes = blob(manifest.layers[0].digest);
  expect([sha256(layerBytes), layerBytes.length, manifest.layers[0].mediaType]).toEqual([manifest.layers[0].digest, manifest.layers[0].size, "application/vnd.oci.image.layer.v1.tar"]);

  // An uncompressed layer's diff ID is its digest; the program is on the image's PATH.
  const config = JSON.parse(configBytes.toString());
  expect(config).toMatchObject({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [manifest.layers[0].digest] } });
  expect(config.config.Env.find((e: string) => e.startsWith("PATH=")).slice("PATH=".length).split(":")).toContain("/usr/local/bin");
  const rootfs = path.join(work, "rootfs");
  fs.writeFileSync(path.join(work, "layer.tar"), layerBytes);
  untar(path.join(work, "layer.tar"), rootfs);
  const unpacked = path.join(rootfs, "usr", "local", "bin", "kube-apiserver");
  expect(fs.readFileSync(unpacked, "utf8")).toBe("#!/bin/sh\necho rehearsal\n");
  expect(fs.statSync(unpacked).mode & 0o777).toBe(0o755);
});

test("the archive is reproducible: the same program gives the same manifest digest", () => {
  const program = path.join(work, "pause");
  fs.writeFileSync(program, "pause");
  const digests = ["a.tar", "b.tar"].map((name) => {
    const archive = path.join(work, name);
    writeImageArchive({ reference: "registry.k8s.io/pause:3.10.2", files: { "/pause": program }, entrypoint: ["/pause"] }, archive);
    const dir = path.join(work, `unpacked-${name}`);
    untar(archive, dir);
    return JSON.parse(fs.readFileSync(path.join(dir, "index.json"), "utf8")).manifests[0].digest;
  });
  expect(digests[0]).toBe(digests[1]);
});

test("the images carry the names kubeadm 1.36.3 lists (`kubeadm config images list`), but CoreDNS's, and only the sandbox and kube-proxy go to workers", () => {
  // Written out from `kubeadm config images list --kubernetes-version v1.36.3`.
  const kubeadmList = [
    "registry.k8s.io/kube-apiserver:v1.36.3",
    "registry.k8s.io/kube-controller-manager:v1.36.3",
    "registry.k8s.io/kube-scheduler:v1.36.3",
    "registry.k8s.io/kube-proxy:v1.36.3",
    "registry.k8s.io/coredns/coredns:v1.14.2",
    "registry.k8s.io/pause:3.10.2",
    "registry.k8s.io/etcd:3.6.8-0",
  ];
  const images = rehearsalImages(
    { kubernetes: (c) => `/bin/${c}`, etcd: "/bin/etcd", pause: "/bin/pause", coredns: "/bin/coredns", debianRoot: "/srv/debian-root" },
    { kubernetes: "1.36.3", etcd: "3.6.8", coredns: "1.14.2" },
  );
  expect(images.map((i) => i.reference).sort()).toEqual([...kubeadmList].sort());
  // CoreDNS pods may land on workers too.
  expect(images.filter((i) => i.onWorkers).map((i) => i.reference).sort()).toEqual([
    "registry.k8s.io/coredns/coredns:v1.14.2",
    "registry.k8s.io/kube-proxy:v1.36.3",
    "registry.k8s.io/pause:3.10.2",
  ]);
  expect(images.find((i) => i.reference.includes("pause"))?.entrypoint).toEqual(["/pause"]);
  // kubeadm's CoreDNS Deployment gives only args ("-conf", ...): the image runs the program.
  expect(images.find((i) => i.reference.includes("coredns"))).toMatchObject({ entrypoint: ["/coredns"], files: { "/coredns": "/bin/coredns" } });
  // kube-proxy runs iptables and conntrack: its image starts from the Debian root; the others hold their program only.
  expect(images.filter((i) => i.root).map((i) => [i.reference, i.root])).toEqual([["registry.k8s.io/kube-proxy:v1.36.3", "/srv/debian-root"]]);
});
