/**
 * `npm run synth-diff -- <base-outdir> <head-outdir>`: what a change does to the
 * synthesized Terraform, as Markdown for a pull request. Compares the two trees per
 * stack and per Terraform address (normalized JSON: keys sorted, cdktf metadata
 * dropped), and shows device user data as the Ignition files and units it writes, so
 * a reviewer sees which file on which node changes.
 *
 * Each tree must be a complete synth (scripts/synthesized.ts): a missing or half-written
 * tree is an error, never "everything removed". A base that does not synthesize is
 * compared as empty only when asked: `npm run synth-diff -- --empty-base <head-outdir>`.
 *
 * Secrets never appear: the synthesized JSON holds only Terraform references, sensitive
 * outputs and variable defaults are masked, and `redactSecrets` masks anything shaped
 * like a key or token.
 */
import { structuredPatch } from "diff";
import { NODE_PATHS } from "../ignition";
import { Json, JsonObject, SynthesizedTreeError, TerraformJson, decodeUserData, devicesOf, parseYamlDocuments, readSynthesized, redactSecrets } from "./synthesized";

/** One reviewable part of a Terraform object: its attributes, or one file/unit of its user data. */
export type Sections = Record<string, string>;

export interface AddressChange {
  readonly stack: string;
  /** `metal_device.x`, `data.metal_precreated_ip_block.y`, `output.z`, `terraform`, ... */
  readonly address: string;
  readonly type: string;
  readonly action: "added" | "removed" | "changed";
  /** Section name -> [before, after] text (undefined when absent on that side). */
  readonly sections: readonly { readonly name: string; readonly before?: string; readonly after?: string }[];
}

/** One object the cluster holds (an add-on the init node applies), added, removed or changed. */
export interface ClusterObjectChange {
  readonly stack: string;
  /** `<apiVersion> <kind> [<namespace>/]<name>`. */
  readonly object: string;
  readonly action: "added" | "removed" | "changed";
  readonly before?: string;
  readonly after?: string;
}

export interface SynthDiff {
  readonly changes: readonly AddressChange[];
  /** The in-cluster objects whose rendering changed (first boot's add-ons; the configuration stack's objects). */
  readonly clusterObjects: readonly ClusterObjectChange[];
  /** Whether the head has a configuration stack, which carries those changes to a running cluster. */
  readonly configStack: boolean;
  readonly stacksAdded: readonly string[];
  readonly stacksRemoved: readonly string[];
  /** True when the head was compared against an empty base on purpose (`--empty-base`). */
  readonly emptyBase?: boolean;
}

function sortKeys(value: Json): Json {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === "object") {
    return Object.fromEntries(
      Object.keys(value)
        .filter((k) => k !== "//") // cdktf metadata (construct path): not Terraform
        .sort()
        .map((k) => [k, sortKeys((value as JsonObject)[k])]),
    );
  }
  return value;
}

const pretty = (v: Json) => JSON.stringify(sortKeys(v), null, 2);

/** The reviewable sections of one object: attributes, plus decoded user data if it has any. */
function sectionsOf(address: string, body: JsonObject): Sections {
  const sections: Sections = {};
  const attributes: JsonObject = { ...body };
  if (address.startsWith("output.") && body.sensitive === true) attributes.value = "(sensitive)";
  if (address.startsWith("variable.") && body.sensitive === true && "default" in body) attributes.default = "(sensitive)";
  if (typeof body.user_data === "string") {
    const decoded = decodeUserData(body.user_data);
    if ("ignition" in decoded) {
      attributes.user_data = "(Ignition: see the files and units below)";
      for (const f of decoded.ignition.files) {
        const mode = f.mode !== undefined ? ` (mode ${f.mode.toString(8).padStart(4, "0")})` : "";
        sections[`file ${f.path}${mode}`] = f.text ?? (f.remote ? `download ${f.remote.url}\nhash ${f.remote.hash ?? "(none)"}` : `(${f.note ?? "not inline"})`);
      }
      for (const u of decoded.ignition.units) {
        const state = [u.enabled !== undefined ? `enabled=${u.enabled}` : "", u.mask ? "masked" : ""].filter(Boolean).join(", ");
        sections[`unit ${u.name}${state ? ` (${state})` : ""}`] = u.contents ?? "";
        for (const d of u.dropins) sections[`unit ${u.name} drop-in ${d.name}`] = d.contents ?? "";
      }
      if (decoded.ignition.directories.length) sections["directories"] = decoded.ignition.directories.join("\n");
      if (decoded.ignition.links.length) sections["links"] = decoded.ignition.links.map((l) => `${l.path} -> ${l.target}`).join("\n");
      if (decoded.ignition.users.length) sections["users"] = decoded.ignition.users.map((u) => `${u.name}: ${u.sshAuthorizedKeys} ssh key(s)`).join("\n");
    } else {
      attributes.user_data = `(${decoded.error})\n${body.user_data}`;
    }
  }
  sections["attributes"] = pretty(attributes);
  for (const k of Object.keys(sections)) sections[k] = redactSecrets(sections[k]);
  return sections;
}

/** Terraform address -> sections, for every block of a stack. */
export function addressesOf(json: TerraformJson): Map<string, { type: string; sections: Sections }> {
  const out = new Map<string, { type: string; sections: Sections }>();
  for (const [type, byName] of Object.entries(json.resource ?? {})) {
    for (const [name, body] of Object.entries(byName)) out.set(`${type}.${name}`, { type, sections: sectionsOf(`${type}.${name}`, body) });
  }
  for (const [type, byName] of Object.entries(json.data ?? {})) {
    for (const [name, body] of Object.entries(byName)) out.set(`data.${type}.${name}`, { type: `data.${type}`, sections: sectionsOf(`data.${type}.${name}`, body) });
  }
  for (const [name, body] of Object.entries(json.output ?? {})) out.set(`output.${name}`, { type: "output", sections: sectionsOf(`output.${name}`, body) });
  for (const [name, body] of Object.entries(json.variable ?? {})) out.set(`variable.${name}`, { type: "variable", sections: sectionsOf(`variable.${name}`, body) });
  for (const [name, configs] of Object.entries(json.provider ?? {})) out.set(`provider.${name}`, { type: "provider", sections: { attributes: redactSecrets(pretty(configs)) } });
  if (json.locals) out.set("locals", { type: "locals", sections: { attributes: pretty(json.locals) } });
  if (json.terraform) out.set("terraform", { type: "terraform", sections: { attributes: pretty(json.terraform) } });
  return out;
}

/**
 * The objects a stack's cluster holds, by `<apiVersion> <kind> [<namespace>/]<name>`: the
 * documents of the files its init node's add-on list names, as pretty JSON. The same
 * objects the configuration stack keeps (lib/cluster-config.ts), with or without it.
 */
export function clusterObjectsOf(json: TerraformJson): Map<string, string> {
  const out = new Map<string, string>();
  for (const device of devicesOf({ stack: json })) {
    if (!device.userData || !("ignition" in device.userData)) continue;
    const files = device.userData.ignition.files;
    const list = files.find((f) => f.path === NODE_PATHS.addonList)?.text;
    if (list === undefined) continue;
    for (const listed of list.split("\n").filter(Boolean)) {
      const text = files.find((f) => f.path === listed)?.text;
      // Downloaded manifests (Calico's CRDs and operator) are pinned by hash: their change is the URL's.
      if (text === undefined) continue;
      for (const doc of parseYamlDocuments(text)) {
        const meta = (doc.metadata ?? {}) as JsonObject;
        out.set(`${doc.apiVersion} ${doc.kind} ${meta.namespace ? `${meta.namespace}/` : ""}${meta.name}`, redactSecrets(pretty(doc)));
      }
    }
  }
  return out;
}

function diffClusterObjects(stack: string, base?: TerraformJson, head?: TerraformJson): ClusterObjectChange[] {
  const before = base ? clusterObjectsOf(base) : new Map<string, string>();
  const after = head ? clusterObjectsOf(head) : new Map<string, string>();
  return [...new Set([...before.keys(), ...after.keys()])]
    .sort()
    .filter((o) => before.get(o) !== after.get(o))
    .map((object) => ({ stack, object, action: !before.has(object) ? "added" : !after.has(object) ? "removed" : "changed", before: before.get(object), after: after.get(object) }));
}

/** Compares two sets of synthesized stacks. Pure. */
export function diffStacks(base: Record<string, TerraformJson>, head: Record<string, TerraformJson>): SynthDiff {
  const changes: AddressChange[] = [];
  const clusterObjects: ClusterObjectChange[] = [];
  const stackNames = [...new Set([...Object.keys(base), ...Object.keys(head)])].sort();
  for (const stack of stackNames) {
    clusterObjects.push(...diffClusterObjects(stack, base[stack], head[stack]));
    const before = base[stack] ? addressesOf(base[stack]) : new Map();
    const after = head[stack] ? addressesOf(head[stack]) : new Map();
    const addresses = [...new Set([...before.keys(), ...after.keys()])].sort();
    for (const address of addresses) {
      const b = before.get(address);
      const a = after.get(address);
      const names = [...new Set([...Object.keys(b?.sections ?? {}), ...Object.keys(a?.sections ?? {})])];
      const sections = names
        .map((name) => ({ name, before: b?.sections[name], after: a?.sections[name] }))
        .filter((s) => s.before !== s.after);
      if (sections.length === 0) continue;
      changes.push({ stack, address, type: (a ?? b)!.type, action: !b ? "added" : !a ? "removed" : "changed", sections });
    }
  }
  return {
    changes,
    clusterObjects,
    configStack: Object.values(head).some((json) => Object.keys(json.resource?.kubernetes_manifest ?? {}).length > 0),
    stacksAdded: stackNames.filter((s) => !base[s]),
    stacksRemoved: stackNames.filter((s) => !head[s]),
  };
}

/**
 * Compares two complete synths; throws SynthesizedTreeError for a tree that is not one.
 * `baseOutdir` undefined compares the head against an empty base (`--empty-base`).
 */
export function diffOutdirs(baseOutdir: string | undefined, headOutdir: string): SynthDiff {
  const head = readSynthesized(headOutdir);
  if (baseOutdir === undefined) return { ...diffStacks({}, head), emptyBase: true };
  return diffStacks(readSynthesized(baseOutdir), head);
}

function unifiedDiff(name: string, before = "", after = "", context = 3): string {
  const patch = structuredPatch(`a/${name}`, `b/${name}`, before, after, "", "", { context });
  const lines: string[] = [];
  for (const hunk of patch.hunks) {
    lines.push(`@@ -${hunk.oldStart},${hunk.oldLines} +${hunk.newStart},${hunk.newLines} @@`);
    lines.push(...hunk.lines.filter((l) => !l.startsWith("\\")));
  }
  return lines.join("\n");
}

/** Longest fence of backticks in `text`, so a fenced block around it cannot be closed early. */
function fence(text: string): string {
  const longest = Math.max(2, ...(text.match(/`+/g) ?? []).map((m) => m.length));
  return "`".repeat(longest + 1);
}

export interface RenderOptions {
  /** Truncate the Markdown at about this many characters (a PR comment holds 65,536). @default 60000 */
  readonly maxChars?: number;
}

export function renderDiff(diff: SynthDiff, options: RenderOptions = {}): string {
  const maxChars = options.maxChars ?? 60000;
  const out: string[] = ["## Synthesized Terraform diff", ""];
  if (diff.emptyBase) out.push("> ⚠️ The base did not synthesize: the head is compared against an empty base, so everything shows as added.", "");
  if (diff.changes.length === 0 && diff.clusterObjects.length === 0) {
    out.push("No change to the synthesized Terraform.");
    return out.join("\n") + "\n";
  }
  const count = (action: AddressChange["action"]) => diff.changes.filter((c) => c.action === action);
  out.push(`**${count("added").length} added, ${count("changed").length} changed, ${count("removed").length} removed** (Terraform addresses, all stacks).`, "");
  if (diff.stacksAdded.length) out.push(`New stacks: ${diff.stacksAdded.join(", ")}.`);
  if (diff.stacksRemoved.length) out.push(`Removed stacks: ${diff.stacksRemoved.join(", ")}.`);

  const removedDevices = diff.changes.filter((c) => c.action === "removed" && c.type === "metal_device");
  const userDataChanged = diff.changes.filter((c) => c.action === "changed" && c.type === "metal_device" && c.sections.some((s) => s.name !== "attributes"));
  if (removedDevices.length) out.push(`> ⚠️ Removes ${removedDevices.length} device(s): ${removedDevices.map((c) => `\`${c.address}\``).join(", ")}. A control plane holds an etcd member.`);
  if (userDataChanged.length) {
    out.push(
      `> ⚠️ User data changes on ${userDataChanged.length} existing device(s). Devices ignore \`user_data\` changes, so only new or replaced nodes get them (docs/operations.md, "Replacing a node").`,
    );
  }
  out.push("", "| Stack | Address | Change |", "|---|---|---|");
  for (const c of diff.changes) out.push(`| ${c.stack} | \`${c.address}\` | ${c.action} |`);
  out.push("");

  const details: string[] = [];
  if (diff.clusterObjects.length > 0) {
    out.push(
      "### In-cluster objects",
      "",
      diff.configStack
        ? `**${diff.clusterObjects.length} object(s) in the cluster change.** The configuration stack applies them to the running cluster on the next \`npm run deploy\`; a new cluster gets them at first boot.`
        : `**${diff.clusterObjects.length} object(s) in the cluster change.** No configuration stack (\`CONFIG_STACK_RUNNER_PREFIX\` unset): only a new cluster gets them, at first boot; a running one keeps what it has.`,
      "",
      "| Stack | Object | Change |",
      "|---|---|---|",
      ...diff.clusterObjects.map((o) => `| ${o.stack} | \`${o.object}\` | ${o.action} |`),
      "",
    );
    for (const o of diff.clusterObjects) {
      const text = o.action === "changed" ? unifiedDiff(o.object, o.before, o.after) : (o.after ?? o.before ?? "");
      const f = fence(text);
      details.push([`<details><summary>${o.action} in the cluster <code>${o.stack}: ${o.object}</code></summary>`, "", `${f}${o.action === "changed" ? "diff" : "json"}`, text, f, "", "</details>", ""].join("\n"));
    }
  }

  for (const c of diff.changes) {
    const body: string[] = [];
    for (const s of c.sections) {
      const text = c.action === "changed" ? unifiedDiff(s.name, s.before, s.after) : (s.after ?? s.before ?? "");
      const lang = c.action === "changed" ? "diff" : s.name === "attributes" ? "json" : "";
      const f = fence(text);
      body.push(`**${s.name}**${s.before === undefined && c.action === "changed" ? " (new)" : s.after === undefined && c.action === "changed" ? " (removed)" : ""}`, "", `${f}${lang}`, text, f, "");
    }
    details.push([`<details><summary>${c.action} <code>${c.stack}: ${c.address}</code></summary>`, "", ...body, "</details>", ""].join("\n"));
  }
  let markdown = out.join("\n") + "\n";
  for (const block of details) {
    if (markdown.length + block.length + 1 > maxChars) {
      markdown += "\n_Diff truncated: run `npm run synth-diff -- <base> <head>` locally for the rest._\n";
      break;
    }
    markdown += block + "\n";
  }
  return markdown;
}

const USAGE = [
  "usage: npm run synth-diff -- <base-outdir> <head-outdir> [--max-chars N]",
  "       npm run synth-diff -- --empty-base <head-outdir> [--max-chars N]   (the base did not synthesize)",
  "each outdir a cdktf.out directory from a complete synth",
].join("\n");

function main(argv: string[]): void {
  const dirs: string[] = [];
  let maxChars: number | undefined;
  let emptyBase = false;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--max-chars") maxChars = Number(argv[++i]);
    else if (argv[i] === "--empty-base") emptyBase = true;
    else dirs.push(argv[i]);
  }
  if (dirs.length !== (emptyBase ? 1 : 2) || (maxChars !== undefined && !(maxChars > 0))) {
    process.stderr.write(`${USAGE}\n`);
    process.exit(2);
  }
  try {
    const diff = emptyBase ? diffOutdirs(undefined, dirs[0]) : diffOutdirs(dirs[0], dirs[1]);
    process.stdout.write(renderDiff(diff, { maxChars }));
  } catch (err) {
    if (!(err instanceof SynthesizedTreeError)) throw err;
    process.stderr.write(`synth-diff: ${err.message}\n`);
    process.exit(1);
  }
}

if (require.main === module) main(process.argv.slice(2));
