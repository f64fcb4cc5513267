/**
 * Calico's programs, built from their pinned sources (pinned-sources.ts) as upstream's
 * Makefiles build them, for the images the operator deploys (calico-images.ts):
 *
 *   calico          3.32.1: calico-node (felix, confd, the BIRD launcher), mountns, the
 *                   CNI plugin and its installer, kube-controllers, typha, the CSI and
 *                   flexvolume drivers, and the four standard CNI plugins the calico/cni
 *                   image carries; with the files the images hold beside them
 *                   (node/filesystem, confd's templates, typha.cfg, flexvol.sh)
 *   calico-bird     Calico's BIRD fork: bird, bird6, birdcl, birdcl6, static
 *   tigera-operator 1.42.3 with the Istio charts it embeds
 *   node-driver-registrar  the CSI registrar Calico's pod2daemon/Makefile builds
 *
 * Go programs are built with CGO_ENABLED=0 (the README of the sources: no libbpf, so no
 * eBPF data plane, which this design does not use) and upstream's version ldflags.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { Build, goEnv, log, onPath, run, toolsCacheDir } from "./build";
import { seconds } from "./format";
import {
  CALICO_BIRD_SOURCE,
  CALICO_SOURCE,
  ISTIO_CHARTS_SOURCE,
  NODE_DRIVER_REGISTRAR_SOURCE,
  PinnedSource,
  TIGERA_OPERATOR_SOURCE,
  locateSource,
  missingSourceAdvice,
  unpackSource,
} from "./pinned-sources";

/** The tag Calico's images carry and its programs report (upstream's GIT_VERSION). */
export const CALICO_TAG = `v${CALICO_SOURCE.version}`;
export const OPERATOR_TAG = `v${TIGERA_OPERATOR_SOURCE.version}`;

/**
 * The Go release Calico 3.32.1 is built with (metadata.mk GO_VERSION, go.mod's `go`
 * line), fetched as the `golang.org/toolchain` module through GOTOOLCHAIN. Built with
 * this machine's Go 1.26, calico-typha died at its first client: "runtime: out of
 * memory: cannot allocate 167882285645824-byte block" in encoding/json's map encoder
 * under json-iterator/reflect2 (uniquelabels.Map.MarshalJSON), a map header read
 * through reflect2's unsafe type layout, which Go 1.26 changed.
 */
export const CALICO_GO_VERSION = "1.25.11";
/** The Calico build's cache key: the source's version and the Go release. */
export const CALICO_BUILD_VERSION = `${CALICO_SOURCE.version}-go${CALICO_GO_VERSION}`;

/**
 * Calico's Go programs: output name -> package in Calico's module. `calico-ipam` is the
 * `calico` program under another name (cni-plugin/Makefile links it).
 */
export const CALICO_PROGRAMS = {
  "calico-node": "./node/cmd/calico-node",
  mountns: "./node/cmd/mountns",
  install: "./cni-plugin/cmd/install",
  calico: "./cni-plugin/cmd/calico",
  "kube-controllers": "./kube-controllers/cmd/kube-controllers",
  "check-status": "./kube-controllers/cmd/check-status",
  wrapper: "./kube-controllers/cmd/wrapper",
  "calico-typha": "./typha/cmd/calico-typha",
  "csi-driver": "./pod2daemon/csidriver",
  flexvol: "./pod2daemon/flexvol",
} as const;
export type CalicoProgram = keyof typeof CALICO_PROGRAMS;

/**
 * The standard CNI plugins calico/cni carries (cni-plugin/Makefile CN_FILES). Upstream
 * builds them from its fork's master branch; here from containernetworking/plugins at the
 * release Calico's go.mod requires, as its own module (its go.sum; Calico's lacks
 * portmap's dependencies).
 */
export const CNI_PLUGINS_VERSION = "1.9.0";
export const CNI_PLUGINS = {
  loopback: "github.com/containernetworking/plugins/plugins/main/loopback",
  "host-local": "github.com/containernetworking/plugins/plugins/ipam/host-local",
  portmap: "github.com/containernetworking/plugins/plugins/meta/portmap",
  tuning: "github.com/containernetworking/plugins/plugins/meta/tuning",
} as const;
export type CniPlugin = keyof typeof CNI_PLUGINS;

/** Files from Calico's tree the images hold, by the folder they are kept in. */
export const CALICO_FILES = {
  /** node/filesystem: rc.local, runit's service folders, felix.cfg, start_runit (in sbin). */
  nodeFilesystem: "node-filesystem",
  /** confd's conf.d and templates (node/Makefile copies them into the image's /etc/calico/confd). */
  confd: "confd",
  typhaConfig: "typha.cfg",
  flexvolScript: "flexvol.sh",
  licence: "LICENSE",
} as const;

function dir(name: string, version: string): string {
  return path.join(toolsCacheDir(), `${name}-${version}`);
}

export function calicoDir(): string {
  return dir(CALICO_SOURCE.name, CALICO_BUILD_VERSION);
}

export function calicoBinary(program: CalicoProgram | CniPlugin): string {
  return path.join(calicoDir(), "bin", program);
}

export function calicoFile(file: keyof typeof CALICO_FILES): string {
  return path.join(calicoDir(), CALICO_FILES[file]);
}

export const BIRD_PROGRAMS = ["bird", "bird6", "birdcl", "birdcl6"] as const;
export type BirdProgram = (typeof BIRD_PROGRAMS)[number];

export function birdBinary(program: BirdProgram): string {
  return path.join(dir(CALICO_BIRD_SOURCE.name, CALICO_BIRD_SOURCE.version), program);
}

export function operatorBinary(): string {
  return path.join(dir(TIGERA_OPERATOR_SOURCE.name, TIGERA_OPERATOR_SOURCE.version), "operator");
}

export function nodeDriverRegistrarBinary(): string {
  return path.join(dir(NODE_DRIVER_REGISTRAR_SOURCE.name, NODE_DRIVER_REGISTRAR_SOURCE.version), "node-driver-registrar");
}

function absent(...sources: PinnedSource[]): string | undefined {
  const missing = sources.filter((s) => !locateSource(s)).map((s) => missingSourceAdvice(s));
  return missing.length > 0 ? missing.join("; ") : undefined;
}

/** `go build` of one program, its time printed. */
function goBuild(tree: string, pkg: string, out: string, ldflags: string, extraEnv: Record<string, string> = {}): void {
  const started = Date.now();
  run("go", ["build", "-ldflags", ldflags, "-o", out, pkg], { cwd: tree, env: goEnv(extraEnv) });
  log(`  ${path.basename(out)} ${seconds(Date.now() - started)}`);
}

function calicoBuild(): Build {
  const programs = Object.keys(CALICO_PROGRAMS) as CalicoProgram[];
  const plugins = Object.keys(CNI_PLUGINS) as CniPlugin[];
  return {
    name: CALICO_SOURCE.name,
    version: CALICO_BUILD_VERSION,
    outputs: [...programs, ...plugins].map((p) => calicoBinary(p)).concat(Object.keys(CALICO_FILES).map((f) => calicoFile(f as keyof typeof CALICO_FILES))),
    group: "calico",
    unavailable: () => absent(CALICO_SOURCE),
    build(work) {
      const tree = unpackSource(CALICO_SOURCE, work);
      const out = path.join(work, "out");
      // lib.Makefile's LDFLAGS (BuildDate left out: the build is reproducible).
      const buildinfo = "github.com/projectcalico/calico/pkg/buildinfo";
      const ldflags = `-s -w -X ${buildinfo}.Version=${CALICO_TAG} -X ${buildinfo}.GitRevision=${CALICO_SOURCE.commit}`;
      const toolchain = { GOTOOLCHAIN: `go${CALICO_GO_VERSION}` };
      for (const p of programs) goBuild(tree, CALICO_PROGRAMS[p], path.join(out, "bin", p), ldflags, toolchain);
      // cni-plugin/Makefile CN_FLAGS: the plugins report Calico's version.
      const cnFlags = `-s -w -X github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion=${CALICO_TAG}`;
      const started = Date.now();
      run("go", ["install", "-ldflags", cnFlags, ...plugins.map((p) => `${CNI_PLUGINS[p]}@v${CNI_PLUGINS_VERSION}`)], { env: goEnv({ GOBIN: path.join(out, "bin"), ...toolchain }) });
      log(`  ${plugins.join(", ")} ${seconds(Date.now() - started)}`);
      fs.cpSync(path.join(tree, "node", "filesystem"), path.join(out, CALICO_FILES.nodeFilesystem), { recursive: true });
      for (const sub of ["conf.d", "templates"]) {
        fs.cpSync(path.join(tree, "confd", "etc", "calico", "confd", sub), path.join(out, CALICO_FILES.confd, sub), { recursive: true });
      }
      fs.copyFileSync(path.join(tree, "typha", "docker-image", "typha.cfg"), path.join(out, CALICO_FILES.typhaConfig));
      fs.copyFileSync(path.join(tree, "pod2daemon", "flexvol", "docker-image", "flexvol.sh"), path.join(out, CALICO_FILES.flexvolScript));
      fs.copyFileSync(path.join(tree, "LICENSE.md"), path.join(out, CALICO_FILES.licence));
      fs.rmSync(calicoDir(), { recursive: true, force: true });
      fs.cpSync(out, calicoDir(), { recursive: true });
    },
  };
}

/**
 * BIRD as its create_binaries.sh builds it: autoreconf once, then per variant a
 * configure in its own folder, `make`, and the two programs linked again statically.
 */
function birdBuild(): Build {
  const variants = [
    { suffix: "6", configure: ["--enable-ipv6=yes", "--with-sysconfig=linux-v6"] },
    { suffix: "", configure: ["--with-sysconfig=linux"] },
  ];
  return {
    name: CALICO_BIRD_SOURCE.name,
    version: CALICO_BIRD_SOURCE.version,
    outputs: BIRD_PROGRAMS.map(birdBinary),
    group: "calico",
    unavailable: () =>
      absent(CALICO_BIRD_SOURCE) ??
      (["autoreconf", "flex", "bison", "gcc", "make"].every(onPath) ? undefined : "building BIRD needs autoconf, flex, bison, gcc and make (apt-get install autoconf flex bison gcc make libncurses-dev libreadline-dev)"),
    build(work) {
      const tree = unpackSource(CALICO_BIRD_SOURCE, work);
      run("autoreconf", [], { cwd: tree });
      const target = path.dirname(birdBinary("bird"));
      fs.mkdirSync(target, { recursive: true });
      for (const v of variants) {
        const started = Date.now();
        const obj = path.join(work, `obj${v.suffix}`);
        fs.mkdirSync(obj);
        // configure's default CFLAGS (-g -O2), with the build folder's path mapped away so
        // the binaries (their debug information and build ID) are the same on every build.
        run(path.join(tree, "configure"), ["--with-protocols=bfd bgp pipe static", ...v.configure, "--enable-client=no", "--enable-pthreads=yes", "--runstatedir=/var/run/calico"], {
          cwd: obj,
          env: { ...process.env, CFLAGS: `-g -O2 -ffile-prefix-map=${work}=.` },
        });
        run("make", [], { cwd: obj });
        fs.rmSync(path.join(obj, "bird"));
        fs.rmSync(path.join(obj, "birdcl"));
        run("make", ["CC=gcc --static", "bird", "birdcl"], { cwd: obj });
        fs.copyFileSync(path.join(obj, "bird"), birdBinary(`bird${v.suffix}` as BirdProgram));
        fs.copyFileSync(path.join(obj, "birdcl"), birdBinary(`birdcl${v.suffix}` as BirdProgram));
        log(`  bird${v.suffix} ${seconds(Date.now() - started)}`);
      }
      for (const p of BIRD_PROGRAMS) fs.chmodSync(birdBinary(p), 0o755);
    },
  };
}

/** The Istio chart archives the operator embeds (its Makefile ISTIO_CHARTS), by the folder each is packed from in Istio's tree. */
const ISTIO_CHARTS: Readonly<Record<string, string>> = {
  base: "manifests/charts/base",
  istiod: "manifests/charts/istio-control/istio-discovery",
  cni: "manifests/charts/istio-cni",
  ztunnel: "manifests/charts/ztunnel",
};

/** Puts `<chart>.tgz` in `into`: from the tarball's packed charts, or packed from a checkout's folders. */
export function istioCharts(work: string, into: string): void {
  const charts = unpackSource(ISTIO_CHARTS_SOURCE, work);
  for (const [chart, folder] of Object.entries(ISTIO_CHARTS)) {
    const target = path.join(into, `${chart}.tgz`);
    const packed = path.join(charts, `${chart}.tgz`);
    if (fs.existsSync(packed)) {
      fs.copyFileSync(packed, target);
      continue;
    }
    // A chart archive holds one folder named after the chart (as `helm package` writes it).
    const staging = path.join(work, "istio-staging", chart);
    fs.mkdirSync(path.dirname(staging), { recursive: true });
    fs.cpSync(path.join(charts, folder), staging, { recursive: true });
    run("tar", ["-czf", target, "--sort=name", "--owner=0", "--group=0", "--numeric-owner", "--mtime=@0", "-C", path.dirname(staging), chart]);
  }
}

function operatorBuild(): Build {
  return {
    name: TIGERA_OPERATOR_SOURCE.name,
    version: TIGERA_OPERATOR_SOURCE.version,
    outputs: [operatorBinary()],
    group: "calico",
    unavailable: () => absent(TIGERA_OPERATOR_SOURCE, ISTIO_CHARTS_SOURCE),
    build(work) {
      const tree = unpackSource(TIGERA_OPERATOR_SOURCE, work);
      istioCharts(work, path.join(tree, "pkg", "render", "istio"));
      // Its Makefile: -X $(PACKAGE_NAME)/version.VERSION=$(GIT_VERSION) -s -w, ./cmd/main.go.
      fs.mkdirSync(path.dirname(operatorBinary()), { recursive: true });
      goBuild(tree, "./cmd/main.go", operatorBinary(), `-s -w -X github.com/tigera/operator/version.VERSION=${OPERATOR_TAG}`);
    },
  };
}

function nodeDriverRegistrarBuild(): Build {
  return {
    name: NODE_DRIVER_REGISTRAR_SOURCE.name,
    version: NODE_DRIVER_REGISTRAR_SOURCE.version,
    outputs: [nodeDriverRegistrarBinary()],
    group: "calico",
    unavailable: () => absent(NODE_DRIVER_REGISTRAR_SOURCE),
    build(work) {
      const tree = unpackSource(NODE_DRIVER_REGISTRAR_SOURCE, work);
      fs.mkdirSync(path.dirname(nodeDriverRegistrarBinary()), { recursive: true });
      // As pod2daemon/Makefile's REGISTRAR_TIGERA_BUILD_CMD: a plain `go build` of the command.
      goBuild(tree, "./cmd/csi-node-driver-registrar", nodeDriverRegistrarBinary(), "-s -w");
    },
  };
}

/** Calico's program builds, in the order they run (calico-images.ts adds the images made from them). */
export function calicoProgramBuilds(): Build[] {
  return [birdBuild(), calicoBuild(), nodeDriverRegistrarBuild(), operatorBuild()];
}
