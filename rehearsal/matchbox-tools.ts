/**
 * The Matchbox target's rehearsal programs (group "matchbox" of `npm run tools`): the
 * Matchbox server, the poseidon/matchbox Terraform provider and Ignition's
 * `ignition-validate` of the release Matchbox parses configs with, each built from its
 * released Go module as upstream's build scripts build it, into the tool cache by version.
 *
 * `go install module@version` cannot be used: the proxy answers the module's version
 * list, which `go install` reads for deprecations, with 403; the release itself it
 * serves. So the module is downloaded by its exact version (verified against the
 * checksum database and its go.sum) and built in its own tree.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { Build, goEnv, run, toolsCacheDir } from "./build";

export const MATCHBOX_VERSION = "0.11.0";
export const MATCHBOX_MODULE = "github.com/poseidon/matchbox";

/** poseidon/matchbox: the provider version cdktf.json declares and the bindings are generated from. */
export const MATCHBOX_PROVIDER = { source: "poseidon/matchbox", version: "0.5.4", module: "github.com/poseidon/terraform-provider-matchbox" } as const;

/**
 * coreos/ignition v2.18.0: what Matchbox v0.11.0's go.mod requires, so the release whose
 * `config/v3_4` re-encodes the configs Matchbox serves (spec 3.4.0, which Debian's
 * ignition-validate 2.14 refuses). Its ignition-validate reads specs 3.0.0 to 3.4.0.
 */
export const IGNITION_VERSION = "2.18.0";
export const IGNITION_MODULE = "github.com/coreos/ignition/v2";

export function ignitionValidateBinary(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(toolsCacheDir(env), `ignition-validate-${IGNITION_VERSION}`, "ignition-validate");
}

export function matchboxBinary(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(toolsCacheDir(env), `matchbox-${MATCHBOX_VERSION}`, "matchbox");
}

/** The module's unpacked tree in Go's module cache (downloaded if missing). */
function moduleTree(module: string, version: string): string {
  return JSON.parse(run("go", ["mod", "download", "-json", `${module}@${version}`], { env: goEnv() })).Dir as string;
}

/**
 * `providerBinary` is where Terraform's filesystem mirror wants the provider
 * (tools.ts providerBinaryPath), passed in to keep this module free of tools.ts.
 */
export function matchboxBuilds(providerBinary: string): Build[] {
  return [
    {
      name: "matchbox",
      version: MATCHBOX_VERSION,
      outputs: [matchboxBinary()],
      group: "matchbox",
      build(work) {
        const tree = moduleTree(MATCHBOX_MODULE, `v${MATCHBOX_VERSION}`);
        // Upstream's Makefile: CGO_ENABLED=0, -ldflags "-w -X .../version.Version=$(git describe)".
        const ldflags = `-w -X ${MATCHBOX_MODULE}/matchbox/version.Version=v${MATCHBOX_VERSION}`;
        run("go", ["build", "-ldflags", ldflags, "-o", path.join(work, "matchbox"), "./cmd/matchbox"], { cwd: tree, env: goEnv() });
        fs.mkdirSync(path.dirname(matchboxBinary()), { recursive: true });
        fs.renameSync(path.join(work, "matchbox"), matchboxBinary());
      },
    },
    {
      name: "ignition-validate",
      version: IGNITION_VERSION,
      outputs: [ignitionValidateBinary()],
      group: "matchbox",
      build(work) {
        const tree = moduleTree(IGNITION_MODULE, `v${IGNITION_VERSION}`);
        // Upstream's `build` script: go build -ldflags "-X .../internal/version.Raw=$VERSION" ./validate.
        // The module as the proxy serves it keeps vendor/modules.txt but not the vendored
        // packages, so not -mod=vendor: go.sum pins what Go downloads instead.
        const env = goEnv({ GOFLAGS: `${goEnv().GOFLAGS} -mod=readonly` });
        run("go", ["build", "-ldflags", `-X ${IGNITION_MODULE}/internal/version.Raw=v${IGNITION_VERSION}`, "-o", path.join(work, "ignition-validate"), "./validate"], { cwd: tree, env });
        fs.mkdirSync(path.dirname(ignitionValidateBinary()), { recursive: true });
        fs.renameSync(path.join(work, "ignition-validate"), ignitionValidateBinary());
      },
    },
    {
      name: "terraform-provider-matchbox",
      version: MATCHBOX_PROVIDER.version,
      outputs: [providerBinary],
      group: "matchbox",
      build(work) {
        const tree = moduleTree(MATCHBOX_PROVIDER.module, `v${MATCHBOX_PROVIDER.version}`);
        // Upstream's Makefile: a plain `go build` of the module (no version flags).
        run("go", ["build", "-o", path.join(work, "provider"), "."], { cwd: tree, env: goEnv() });
        fs.mkdirSync(path.dirname(providerBinary), { recursive: true });
        fs.renameSync(path.join(work, "provider"), providerBinary);
      },
    },
  ];
}
