/**
 * The app on CDK Terrain, cdktf's maintained fork (README "cdktf's status and CDK
 * Terrain"): the example cluster, the 3 + 5 cluster and the Terraform Cloud variant are
 * synthesized on cdktf and, from the same sources, on the fork installed as the README
 * says (scripts/cdk-terrain.ts, cached outside the repository), and the output compared:
 * every difference must be in KNOWN_DIFFERENCES with its reason, and every entry there
 * must still occur. Without the npm registry and without a cached install it skips
 * saying why; under CI (`CI` set, as GitHub Actions and the CI runner of .ci/run set it) it fails instead.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { seconds } from "../rehearsal/format";
import { REHEARSAL_TAYGA_PACKAGE_URL, StackRehearsal, readStack } from "../rehearsal/rehearse";
import { plannedActions } from "../rehearsal/terraform";
import { toolsPresent, toolsUnavailable } from "../rehearsal/tools";
import { CDK_TERRAIN_VERSION, SynthLibrary, isCdkTerrainInstalled, npmRunSynthOnCdkTerrain, prepareCdkTerrain, registryProblem, synthOnCdkTerrain, synthOnCdktf } from "../scripts/cdk-terrain";

const VARIANTS: Record<string, Record<string, string>> = {
  example: {},
  "cp3-workers5": { CONTROL_PLANE_COUNT: "3", WORKER_COUNT: "5" },
  "terraform-cloud": { TF_CLOUD_ORGANIZATION: "acme", TF_WORKSPACE_PREFIX: "v6-" },
  // Two stacks, the second through the prebuilt kubernetes bindings (constructs/cluster-config-stack.ts).
  "config-stack": { CONFIG_STACK_RUNNER_PREFIX: "2001:db8:99:1::/64", API_ALLOWED_PREFIXES: "2001:db8:99::/48" },
  // The example as the rehearsal plans it: its own tayga mirror instead of the placeholder the plan refuses.
  rehearsed: { NAT64_TAYGA_PACKAGE_URL: REHEARSAL_TAYGA_PACKAGE_URL },
};

interface KnownDifference {
  /** The output file, relative to a variant's outdir. */
  readonly file: RegExp;
  /** JSON path of the value. */
  readonly at: readonly string[];
  readonly cdktf: unknown;
  readonly cdktn: unknown;
  readonly why: string;
}

/** Every way the fork's parsed output may differ from cdktf's, and why that is harmless. */
const KNOWN_DIFFERENCES: readonly KnownDifference[] = [
  {
    file: /^stacks\/[^/]+\/cdk\.tf\.json$/,
    at: ["//", "metadata", "version"],
    cdktf: "0.21.0",
    cdktn: CDK_TERRAIN_VERSION,
    why: 'the library writes its own version into the stack\'s "//" block, which Terraform ignores as a comment',
  },
  {
    file: /^manifest\.json$/,
    at: ["version"],
    cdktf: "0.21.0",
    cdktn: CDK_TERRAIN_VERSION,
    why: "the manifest (read by the CLI, npm run report and synth-diff) records the library version; none of the app's scripts reads it",
  },
];

/**
 * The one difference in the text besides those values: cdktf 0.21 writes an empty
 * object or array over two lines, the fork as `{}` / `[]`. Same JSON, so Terraform
 * plans the same; synth-diff compares parsed JSON, so a switch shows no diff there either.
 */
function asCdkTerrainFormats(cdktfText: string): string {
  return cdktfText.replace(/([[{])\n\s*([\]}])/g, "$1$2");
}

interface JsonDifference {
  readonly at: string[];
  readonly cdktf: unknown;
  readonly cdktn: unknown;
}

/** Where two parsed JSON documents differ: the deepest differing values, absent ones as undefined. */
function jsonDifferences(cdktf: unknown, cdktn: unknown, at: string[] = []): JsonDifference[] {
  const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null;
  if (isObject(cdktf) && isObject(cdktn) && Array.isArray(cdktf) === Array.isArray(cdktn)) {
    const keys = [...new Set([...Object.keys(cdktf), ...Object.keys(cdktn)])];
    return keys.flatMap((k) => jsonDifferences(cdktf[k], cdktn[k], [...at, k]));
  }
  return JSON.stringify(cdktf) === JSON.stringify(cdktn) ? [] : [{ at, cdktf, cdktn }];
}

function isKnown(file: string, d: JsonDifference, known: KnownDifference): boolean {
  return known.file.test(file) && JSON.stringify(known.at) === JSON.stringify(d.at) && JSON.stringify(known.cdktf) === JSON.stringify(d.cdktf) && JSON.stringify(known.cdktn) === JSON.stringify(d.cdktn);
}

/** Files a synth wrote under `dir`, relative, sorted. */
function filesUnder(dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true }) as string[]).filter((f) => fs.statSync(path.join(dir, f)).isFile()).sort();
}

describe("the comparison itself", () => {
  test("finds a changed, an added and a removed value, deep inside arrays, and nothing in equal documents", () => {
    const cdktf = { resource: { metal_device: { cp: { tags: ["a", "b"], plan: "c3.small.x86" } } } };
    expect(jsonDifferences(cdktf, structuredClone(cdktf))).toEqual([]);
    // What a realistic regression would look like: a tag lost, a value changed, an attribute added.
    const cdktn = { resource: { metal_device: { cp: { tags: ["a"], plan: "m3.small.x86", extra: 1 } } } };
    expect(jsonDifferences(cdktf, cdktn)).toEqual([
      { at: ["resource", "metal_device", "cp", "tags", "1"], cdktf: "b", cdktn: undefined },
      { at: ["resource", "metal_device", "cp", "plan"], cdktf: "c3.small.x86", cdktn: "m3.small.x86" },
      { at: ["resource", "metal_device", "cp", "extra"], cdktf: undefined, cdktn: 1 },
    ]);
    expect(jsonDifferences({ a: [] }, { a: {} })).toEqual([{ at: ["a"], cdktf: [], cdktn: {} }]);
  });

  test("a known difference explains only its own file, path and values", () => {
    const [version] = KNOWN_DIFFERENCES;
    const d = { at: ["//", "metadata", "version"], cdktf: "0.21.0", cdktn: CDK_TERRAIN_VERSION };
    expect(isKnown("stacks/v6fabric/cdk.tf.json", d, version)).toBe(true);
    expect(isKnown("manifest.json", d, version)).toBe(false);
    expect(isKnown("stacks/v6fabric/cdk.tf.json", { ...d, cdktn: "0.25.0" }, version)).toBe(false);
    expect(isKnown("stacks/v6fabric/cdk.tf.json", { ...d, at: ["//", "metadata", "backend"] }, version)).toBe(false);
  });

  test("the formatting allowance joins only empty objects and arrays", () => {
    expect(asCdkTerrainFormats('{\n  "metal": [\n    {\n    }\n  ],\n  "x": [\n  ]\n}')).toBe('{\n  "metal": [\n    {}\n  ],\n  "x": []\n}');
    expect(asCdkTerrainFormats('[\n  "a"\n]')).toBe('[\n  "a"\n]');
  });
});

const installed = isCdkTerrainInstalled();
const unavailable = installed ? undefined : registryProblem();
// The rehearsal's plan needs the pinned Terraform and providers; without them it says what to build or put where.
const rehearsalTools = toolsPresent(["terraform"]);
if (installed && !rehearsalTools) {
  console.warn(`SKIPPED the rehearsal's plan on CDK Terrain: the pinned terraform and providers are not built: ${toolsUnavailable(["terraform"]) ?? "run `npm run tools` (.ci/run does)"}`);
}

if (unavailable && process.env.CI) {
  test("CDK Terrain can be installed (CI must run the comparison)", () => {
    throw new Error(`no cached CDK Terrain install and ${unavailable}`);
  });
} else if (unavailable) {
  console.warn(`SKIPPED the CDK Terrain comparison: no cached install (npm run cdk-terrain makes one) and ${unavailable}`);
  test.skip("the app synthesizes the same on CDK Terrain (needs the npm registry once)", () => undefined);
} else {
  describe(`the app on CDK Terrain ${CDK_TERRAIN_VERSION}, compared with cdktf`, () => {
    let temp = "";
    let libraries: { cdktf: SynthLibrary; cdktn: SynthLibrary };
    let installDir = "";
    const out = (library: "cdktf" | "cdktn", variant: string) => path.join(temp, library, variant);

    beforeAll(() => {
      temp = fs.mkdtempSync(path.join(os.tmpdir(), "v6fabric-test-cdk-terrain-"));
      const install = prepareCdkTerrain();
      installDir = install.dir;
      if (install.installedInMs !== undefined) console.log(`CDK Terrain ${CDK_TERRAIN_VERSION}: cold install in ${seconds(install.installedInMs)} into ${install.dir}`);
      const t0 = Date.now();
      const cdktf = synthOnCdktf(path.join(temp, "cdktf"), VARIANTS);
      const t1 = Date.now();
      fs.mkdirSync(path.join(temp, "app"));
      const cdktn = synthOnCdkTerrain(install, path.join(temp, "app"), path.join(temp, "cdktn"), VARIANTS);
      console.log(`CDK Terrain comparison: synth on cdktf ${seconds(t1 - t0)}, on CDK Terrain ${seconds(Date.now() - t1)} (install ${install.installedInMs === undefined ? "cached" : "cold"})`);
      libraries = { cdktf, cdktn };
    }, 20 * 60_000);

    afterAll(() => {
      if (temp) fs.rmSync(temp, { recursive: true, force: true });
    });

    test("each side ran on its own library: cdktf 0.21.0, and the fork behind the name cdktf", () => {
      expect(libraries).toEqual({ cdktf: { name: "cdktf", version: "0.21.0" }, cdktn: { name: "cdktn", version: CDK_TERRAIN_VERSION } });
    });

    describe.each(Object.keys(VARIANTS))("%s", (variant) => {
      test("the same files, every difference in their JSON a known one", () => {
        const files = filesUnder(out("cdktf", variant));
        expect(files).toEqual(expect.arrayContaining(["manifest.json", expect.stringMatching(/^stacks\/[^/]+\/cdk\.tf\.json$/)]));
        expect(filesUnder(out("cdktn", variant))).toEqual(files);
        const unexplained: (JsonDifference & { file: string })[] = [];
        for (const file of files) {
          const read = (library: "cdktf" | "cdktn") => JSON.parse(fs.readFileSync(path.join(out(library, variant), file), "utf8"));
          for (const d of jsonDifferences(read("cdktf"), read("cdktn"))) {
            if (!KNOWN_DIFFERENCES.some((k) => isKnown(file, d, k))) unexplained.push({ file, ...d });
          }
        }
        expect(unexplained).toEqual([]);
      });

      test("byte for byte the same text once the known values and the format of empty objects and arrays are allowed for", () => {
        for (const file of filesUnder(out("cdktf", variant))) {
          const cdktfText = fs.readFileSync(path.join(out("cdktf", variant), file), "utf8");
          const withForkValues = KNOWN_DIFFERENCES.filter((k) => k.file.test(file)).reduce((text, k) => {
            const key = JSON.stringify(k.at[k.at.length - 1]);
            return text.replace(`${key}: ${JSON.stringify(k.cdktf)}`, `${key}: ${JSON.stringify(k.cdktn)}`);
          }, cdktfText);
          expect([file, fs.readFileSync(path.join(out("cdktn", variant), file), "utf8")]).toEqual([file, asCdkTerrainFormats(withForkValues)]);
        }
      });
    });

    test("the fork's metal bindings are CDK Terrain's generator's, importing the library as `cdktf`: one copy of it is loaded", () => {
      const bindings = path.join(installDir, ".gen", "providers", "metal");
      const sources = (fs.readdirSync(bindings, { recursive: true }) as string[]).filter((f) => f.endsWith(".ts"));
      expect(sources).toContain(path.join("device", "index.ts"));
      const imports = new Set(sources.flatMap((f) => [...fs.readFileSync(path.join(bindings, f), "utf8").matchAll(/^import .* from '(cdkt[fn])';$/gm)].map((m) => m[0])));
      // `cdktn.` is how CDK Terrain's generator names the library in the code it writes.
      expect([...imports]).toEqual(["import * as cdktn from 'cdktf';"]);
    });

    test("`npm run synth` in the switched app (main.ts on the fork) writes what the example's synth wrote", () => {
      const viaNpm = path.join(temp, "npm-run-synth");
      npmRunSynthOnCdkTerrain(path.join(temp, "app"), viaNpm);
      expect(filesUnder(viaNpm)).toEqual(filesUnder(out("cdktn", "example")));
      for (const file of filesUnder(viaNpm)) expect([file, fs.readFileSync(path.join(viaNpm, file), "utf8")]).toEqual([file, fs.readFileSync(path.join(out("cdktn", "example"), file), "utf8")]);
    });

    (rehearsalTools ? test : test.skip)("the rehearsal plans the fork's output as cdktf's: the real Terraform, tls and metal providers against the Metal API emulator", () => {
      const planOf = (library: "cdktf" | "cdktn") => {
        const outdir = out(library, "rehearsed");
        const [stack] = Object.keys(JSON.parse(fs.readFileSync(path.join(outdir, "manifest.json"), "utf8")).stacks);
        const env = { PATH: process.env.PATH, HOME: process.env.HOME, ...VARIANTS.rehearsed };
        const rehearsal = new StackRehearsal(stack, readStack(outdir, stack), path.join(temp, `plan-${library}`), env);
        try {
          rehearsal.init();
          rehearsal.validate();
          return plannedActions(rehearsal.plan().plan);
        } finally {
          rehearsal.close();
        }
      };
      const onFork = planOf("cdktn");
      expect(onFork.metal_device).toEqual({ create: 3 });
      expect(onFork).toEqual(planOf("cdktf"));
    }, 5 * 60_000);

    test("every known difference still occurs (a stale entry would hide nothing and explain nothing)", () => {
      const seen = KNOWN_DIFFERENCES.map((k) =>
        Object.keys(VARIANTS).some((variant) =>
          filesUnder(out("cdktf", variant)).some((file) => {
            const read = (library: "cdktf" | "cdktn") => JSON.parse(fs.readFileSync(path.join(out(library, variant), file), "utf8"));
            return jsonDifferences(read("cdktf"), read("cdktn")).some((d) => isKnown(file, d, k));
          }),
        ),
      );
      expect(KNOWN_DIFFERENCES.map((k, i) => [k.why, seen[i]])).toEqual(KNOWN_DIFFERENCES.map((k) => [k.why, true]));
    });
  });
}
