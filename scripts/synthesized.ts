/**
 * Reading what `cdktf synth` wrote, for the report and the pull-request diff: the
 * stacks' cdk.tf.json, the Ignition inside each device's user data (files, units),
 * and every Kubernetes/kubeadm/Calico document those files or the stacks carry.
 *
 * Only the synthesized output is read, never the settings or the renderers, so the
 * report shows what a deploy would really send. Secrets are never in that output (they
 * are Terraform references); `redactSecrets` still masks anything shaped like one.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as zlib from "node:zlib";
import * as crypto from "node:crypto";
import { AnnotationMetadataEntryType, Manifest } from "cdktf";
import YAML from "yaml";
import { unpackUserData } from "../ignition/user-data";
import { parseTerraformTemplate } from "../lib/terraform-template";

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

/** Readers of untyped JSON: a value as an object, an array or a string, or empty. */
export const obj = (v: Json | undefined): JsonObject => (v && typeof v === "object" && !Array.isArray(v) ? v : {});
export const arr = (v: Json | undefined): Json[] => (Array.isArray(v) ? v : []);
export const str = (v: Json | undefined): string | undefined => (typeof v === "string" ? v : typeof v === "number" ? String(v) : undefined);

export interface TerraformJson {
  readonly resource?: Record<string, Record<string, JsonObject>>;
  readonly data?: Record<string, Record<string, JsonObject>>;
  readonly output?: Record<string, JsonObject>;
  readonly variable?: Record<string, JsonObject>;
  readonly provider?: Record<string, JsonObject[]>;
  readonly terraform?: JsonObject;
  readonly locals?: JsonObject;
}

/** Why a directory is not the output of a complete synth. */
export class SynthesizedTreeError extends Error {}

/** What a synthesized tree must hold, for the messages. */
export const SYNTHESIZED_TREE = `a cdktf.out directory from a complete synth: ${Manifest.fileName} (cdktf writes it last) and ${Manifest.stacksFolder}/<name>/cdk.tf.json for each stack it lists`;

/**
 * Stack name -> parsed cdk.tf.json of the complete synth in `outdir`
 * (`<outdir>/stacks/<stack>/cdk.tf.json`). cdktf writes manifest.json after every stack
 * and every validation, and main.ts removes it and the stacks before it synthesizes, so
 * a tree without it is a synth that failed or never ran. A stack with an error
 * annotation did not synthesize either (`cdktf synth` fails on it). Throws
 * SynthesizedTreeError naming the path and what was expected, never returns no stacks.
 */
export function readSynthesized(outdir: string): Record<string, TerraformJson> {
  const fail = (problem: string): never => {
    throw new SynthesizedTreeError(`${outdir}: ${problem}. Expected ${SYNTHESIZED_TREE}; run \`npm run synth\` first.`);
  };
  if (!fs.existsSync(outdir)) fail("no such directory");
  if (!fs.statSync(outdir).isDirectory()) fail("not a directory");
  const manifestFile = path.join(outdir, Manifest.fileName);
  if (!fs.existsSync(manifestFile)) fail(`no ${Manifest.fileName}, so no complete synth: the last one failed, or none ran`);
  let manifest: { stacks?: Record<string, { annotations?: { level?: string; message?: string }[] }> };
  try {
    manifest = JSON.parse(fs.readFileSync(manifestFile, "utf8"));
  } catch {
    return fail(`${Manifest.fileName} is not JSON`);
  }
  const names = Object.keys(manifest.stacks ?? {}).sort();
  if (names.length === 0) fail(`${Manifest.fileName} lists no stack`);
  const stacks: Record<string, TerraformJson> = {};
  for (const name of names) {
    const errors = (manifest.stacks![name].annotations ?? []).filter((a) => a.level === AnnotationMetadataEntryType.ERROR);
    if (errors.length > 0) fail(`stack ${name} did not synthesize: ${errors.map((e) => e.message).join("; ")}`);
    const file = path.join(outdir, Manifest.stacksFolder, name, "cdk.tf.json");
    if (!fs.existsSync(file)) fail(`${Manifest.fileName} lists stack ${name} but ${file} is missing`);
    try {
      stacks[name] = JSON.parse(fs.readFileSync(file, "utf8"));
    } catch {
      fail(`${file} is not JSON`);
    }
  }
  return stacks;
}

// ---------------------------------------------------------------------------------
// Terraform template strings

/** A Terraform string split into literal text and `${...}` / `%{...}` expressions. */
export type TemplatePart = { readonly literal: string } | { readonly expression: string };

/**
 * Splits a Terraform JSON string into literals and interpolations (lib/terraform-template.ts);
 * `$${` and `%%{` are escapes for a literal `${` / `%{` (ignition/terraform-escape.ts writes them).
 */
export function parseTemplate(text: string): TemplatePart[] {
  return parseTerraformTemplate(text).map((p) => ("literal" in p ? p : { expression: p.expression.trim() }));
}

/** Expressions (Terraform references) inside a string. */
export function templateExpressions(text: string): string[] {
  return parseTemplate(text).flatMap((p) => ("expression" in p ? [p.expression] : []));
}

// ---------------------------------------------------------------------------------
// Secrets

const PEM_PRIVATE_KEY = /-----BEGIN ([A-Z ]*)PRIVATE KEY-----[\s\S]*?-----END \1PRIVATE KEY-----/g;
/** kubeadm bootstrap token shape (kubeadm constants: [a-z0-9]{6}.[a-z0-9]{16}). */
const BOOTSTRAP_TOKEN = /\b[a-z0-9]{6}\.[a-z0-9]{16}\b/g;
/** Values of keys that name a secret, in YAML (`key: value`) or JSON (`"key":"value"`) form. */
const SECRET_FIELD = /("?(?:password|certificateKey|token|secret|privateKey|md5_password|auth_token)"?[ \t]*[:=][ \t]*"?)([^"\s,}${][^"\s,}]*)/gi;

/**
 * Masks values that look like secrets. The synthesized output should hold none (secrets
 * are Terraform references, left as `${...}`), so this is a second line of defence for
 * anything printed to a pull request.
 */
export function redactSecrets(text: string): string {
  return text
    .replace(PEM_PRIVATE_KEY, (_m, kind: string) => `-----BEGIN ${kind}PRIVATE KEY-----\n(redacted)\n-----END ${kind}PRIVATE KEY-----`)
    .replace(BOOTSTRAP_TOKEN, "(redacted-token)")
    .replace(SECRET_FIELD, (_m, key: string) => `${key}(redacted)`);
}

// ---------------------------------------------------------------------------------
// Ignition user data

export interface DecodedFile {
  readonly path: string;
  readonly mode?: number;
  /** File text as written on the node (references shown as `${expr}`), when inline. */
  readonly text?: string;
  /** Terraform expressions the contents come from at apply time. */
  readonly expressions: readonly string[];
  /** A remote source (https URL) and its verification hash. */
  readonly remote?: { readonly url: string; readonly hash?: string };
  /** Why `text` is missing, e.g. binary contents. */
  readonly note?: string;
}

export interface DecodedUnit {
  readonly name: string;
  readonly enabled?: boolean;
  readonly mask?: boolean;
  readonly contents?: string;
  readonly dropins: readonly { readonly name: string; readonly contents?: string }[];
}

export interface DecodedIgnition {
  readonly version?: string;
  readonly files: readonly DecodedFile[];
  readonly directories: readonly string[];
  readonly links: readonly { readonly path: string; readonly target: string }[];
  readonly units: readonly DecodedUnit[];
  readonly users: readonly { readonly name: string; readonly sshAuthorizedKeys: number }[];
}

export type UserDataDecoding = { readonly ignition: DecodedIgnition } | { readonly error: string };

/**
 * User data is a Terraform string: interpolations may hold quotes and braces that are
 * not JSON until Terraform renders them (`${join(".", [...])}`). Each expression is
 * swapped for a placeholder before parsing and put back, as `${expr}`, for display.
 */
class Masked {
  readonly expressions: string[] = [];
  readonly text: string;

  constructor(template: string) {
    this.text = parseTemplate(template)
      .map((p) => ("literal" in p ? p.literal : `__TFEXPR_${this.expressions.push(p.expression) - 1}__`))
      .join("");
  }

  /** Expressions whose placeholders occur in `s`. */
  expressionsIn(s: string): string[] {
    return [...s.matchAll(/__TFEXPR_(\d+)__/g)].map((m) => this.expressions[Number(m[1])]);
  }

  /** `s` with placeholders shown as `${expr}`. */
  restore(s: string): string {
    return s.replace(/__TFEXPR_(\d+)__/g, (_m, i: string) => `\${${this.expressions[Number(i)]}}`);
  }

  restoreAll(value: Json): Json {
    if (typeof value === "string") return this.restore(value);
    if (Array.isArray(value)) return value.map((v) => this.restoreAll(v));
    if (value && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, this.restoreAll(v)]));
    return value;
  }
}

function decodeDataUrl(masked: Masked, source: string, compression: string | undefined): { text?: string; expressions: string[]; note?: string } {
  const comma = source.indexOf(",");
  const header = source.slice("data:".length, comma);
  const payload = source.slice(comma + 1);
  const expressions = masked.expressionsIn(payload);
  if (header.endsWith(";base64")) {
    // A base64 payload with a reference inside is produced at apply time (e.g. base64encode(pem)).
    if (expressions.length > 0) return { expressions, note: `contents set at apply time from ${expressions.map((e) => `\${${e}}`).join(", ")}` };
    let bytes = Buffer.from(payload, "base64");
    if (compression === "gzip") {
      try {
        bytes = zlib.gunzipSync(bytes);
      } catch {
        // Ignition would refuse it too; one bad file must not stop the report or the diff.
        return { expressions, note: "marked gzip but not gzip data" };
      }
    }
    return bytesToText(bytes, expressions);
  }
  if (compression === "gzip") return { expressions, note: "gzip-compressed percent-encoded data" };
  let text: string;
  try {
    text = decodeURIComponent(payload);
  } catch {
    return { expressions, note: "malformed percent-encoding" };
  }
  // References stay as they are: Terraform substitutes them into the file at apply time.
  return { text: masked.restore(text), expressions };
}

function bytesToText(bytes: Buffer, expressions: string[]): { text?: string; expressions: string[]; note?: string } {
  const text = bytes.toString("utf8");
  if (text.includes("\uFFFD") || /[\x00-\x08\x0E-\x1F]/.test(text)) {
    return { expressions, note: `binary, ${bytes.length} bytes, sha256 ${crypto.createHash("sha256").update(bytes).digest("hex")}` };
  }
  return { text, expressions };
}

/** Decodes a device's `user_data` (Ignition JSON as a Terraform string). */
export function decodeUserData(userData: string): UserDataDecoding {
  const masked = new Masked(userData);
  let config: any;
  try {
    config = JSON.parse(masked.text);
  } catch {
    return {
      error:
        masked.expressions.length > 0 && masked.text.trim().startsWith("__TFEXPR_")
          ? `user data is a Terraform expression (${masked.expressions.join(", ")}), not Ignition JSON`
          : "user data is not JSON",
    };
  }
  if (!config || typeof config !== "object" || !config.ignition) return { error: "user data is JSON but not an Ignition config" };
  // The boot config travels gzip'd as a merged config (ignition/user-data.ts): show its files and units as the node's.
  try {
    config = unpackUserData(config);
  } catch (e) {
    return { error: `user data merges a config that cannot be read: ${(e as Error).message}` };
  }
  const files: DecodedFile[] = (config.storage?.files ?? []).map((f: any): DecodedFile => {
    const filePath = masked.restore(String(f.path));
    const source: string | undefined = f.contents?.source;
    if (source === undefined) return { path: filePath, mode: f.mode, text: "", expressions: [] };
    if (source.startsWith("data:")) return { path: filePath, mode: f.mode, ...decodeDataUrl(masked, source, f.contents?.compression) };
    return {
      path: filePath,
      mode: f.mode,
      expressions: masked.expressionsIn(source),
      remote: { url: masked.restore(source), hash: f.contents?.verification?.hash },
    };
  });
  const units: DecodedUnit[] = (config.systemd?.units ?? []).map((u: any) => {
    const unit = masked.restoreAll(u) as any;
    return { name: unit.name, enabled: unit.enabled, mask: unit.mask, contents: unit.contents, dropins: unit.dropins ?? [] };
  });
  return {
    ignition: {
      version: config.ignition.version,
      files,
      directories: (config.storage?.directories ?? []).map((d: any) => masked.restore(String(d.path))),
      links: (config.storage?.links ?? []).map((l: any) => ({ path: masked.restore(String(l.path)), target: masked.restore(String(l.target)) })),
      units,
      users: (config.passwd?.users ?? []).map((u: any) => ({ name: String(u.name), sshAuthorizedKeys: (u.sshAuthorizedKeys ?? []).length })),
    },
  };
}

// ---------------------------------------------------------------------------------
// Devices and Kubernetes documents

export interface SynthesizedDevice {
  readonly stack: string;
  /** Terraform address, `metal_device.<id>`, or for the Matchbox target the machine's `matchbox_profile.<id>`. */
  readonly address: string;
  readonly hostname: string;
  readonly body: JsonObject;
  readonly userData: UserDataDecoding | undefined;
}

export function devicesOf(stacks: Record<string, TerraformJson>): SynthesizedDevice[] {
  return Object.entries(stacks).flatMap(([stack, json]) => [
    ...Object.entries(json.resource?.metal_device ?? {}).map(([id, body]) => ({
      stack,
      address: `metal_device.${id}`,
      hostname: String(body.hostname),
      body,
      userData: typeof body.user_data === "string" ? decodeUserData(body.user_data) : undefined,
    })),
    ...matchboxMachinesOf(stack, json),
  ]);
}

/**
 * The Matchbox target's machines (docs/matchbox.md): each machine's profile merges its
 * user data from a local (`data:;base64,${base64encode(local.<name>)}`), the same string a
 * Metal device's user_data holds; its `os=installed` group names its role. They read as
 * devices whose plan is the operator's own hardware.
 */
function matchboxMachinesOf(stack: string, json: TerraformJson): SynthesizedDevice[] {
  const profiles = json.resource?.matchbox_profile ?? {};
  const groups = Object.values(json.resource?.matchbox_group ?? {});
  const install = Object.values(profiles).find((p) => typeof p.kernel === "string");
  const channel = /^https?:\/\/([a-z]+)\.release\.flatcar-linux\.net\//.exec(String(install?.kernel ?? ""))?.[1] ?? "?";
  return Object.entries(profiles).flatMap(([id, profile]) => {
    const merge = /"source":"data:;base64,\$\{base64encode\(local\.([^)]+)\)\}"/.exec(String(profile.raw_ignition ?? ""));
    const userData = merge ? json.locals?.[merge[1]] : undefined;
    if (typeof userData !== "string") return [];
    const group = groups.find((g) => String(g.profile) === `\${matchbox_profile.${id}.name}`);
    const role = String(((group?.metadata ?? {}) as JsonObject).role ?? "");
    const body: JsonObject = { hostname: String(profile.name), plan: "own machine (Matchbox)", metro: "-", operating_system: `flatcar_${channel}`, tags: role ? [`k8s-role-${role}`] : [] };
    return [{ stack, address: `matchbox_profile.${id}`, hostname: String(profile.name), body, userData: decodeUserData(userData) }];
  });
}

export interface KubernetesDocument {
  readonly apiVersion: string;
  readonly kind: string;
  readonly name?: string;
  readonly namespace?: string;
  readonly body: JsonObject;
  /** Where it was found: `<hostname>:<file path>` or `<stack>:<resource address>`, for each copy. */
  readonly origins: string[];
}

/** YAML 1.1, as kubeadm and the API server's YAML readers parse it. */
export function parseYamlDocuments(text: string): JsonObject[] {
  const docs: JsonObject[] = [];
  for (const doc of YAML.parseAllDocuments(text, { version: "1.1" })) {
    if (doc.errors.length > 0) continue;
    const value = doc.toJSON();
    if (value && typeof value === "object" && !Array.isArray(value)) {
      // A v1 List (kubectl's form for several objects in one file) holds them in items.
      if (value.kind === "List" && Array.isArray(value.items)) docs.push(...value.items);
      else docs.push(value);
    }
  }
  return docs;
}

function identity(doc: JsonObject): string {
  const meta = (doc.metadata ?? {}) as JsonObject;
  return [doc.apiVersion, doc.kind, meta.namespace ?? "", meta.name ?? ""].join("/");
}

/**
 * Every Kubernetes-style document (apiVersion + kind) the stacks carry: YAML/JSON files
 * in the nodes' Ignition, and `kubernetes_manifest` / `kubectl_manifest` resources.
 * The same document on several nodes appears once, with every origin.
 */
export function kubernetesDocuments(stacks: Record<string, TerraformJson>): KubernetesDocument[] {
  const byIdentity = new Map<string, KubernetesDocument>();
  const add = (doc: JsonObject, origin: string) => {
    if (typeof doc.apiVersion !== "string" || typeof doc.kind !== "string") return;
    const key = identity(doc);
    const known = byIdentity.get(key);
    if (known) {
      known.origins.push(origin);
      return;
    }
    const meta = (doc.metadata ?? {}) as JsonObject;
    byIdentity.set(key, {
      apiVersion: doc.apiVersion,
      kind: doc.kind,
      name: typeof meta.name === "string" ? meta.name : undefined,
      namespace: typeof meta.namespace === "string" ? meta.namespace : undefined,
      body: doc,
      origins: [origin],
    });
  };
  for (const device of devicesOf(stacks)) {
    if (!device.userData || !("ignition" in device.userData)) continue;
    for (const file of device.userData.ignition.files) {
      if (file.text === undefined || !/apiVersion/.test(file.text)) continue;
      for (const doc of parseYamlDocuments(file.text)) add(doc, `${device.hostname}:${file.path}`);
    }
  }
  for (const [stack, json] of Object.entries(stacks)) {
    for (const [id, body] of Object.entries(json.resource?.kubernetes_manifest ?? {})) {
      if (body.manifest && typeof body.manifest === "object" && !Array.isArray(body.manifest)) add(body.manifest as JsonObject, `${stack}:kubernetes_manifest.${id}`);
    }
    for (const [id, body] of Object.entries(json.resource?.kubectl_manifest ?? {})) {
      if (typeof body.yaml_body === "string") for (const doc of parseYamlDocuments(body.yaml_body)) add(doc, `${stack}:kubectl_manifest.${id}`);
    }
  }
  return [...byIdentity.values()];
}

/** Documents of one kind (any API group version), e.g. `ofKind(docs, "BGPPeer")`. */
export function ofKind(docs: readonly KubernetesDocument[], kind: string): KubernetesDocument[] {
  return docs.filter((d) => d.kind === kind);
}
