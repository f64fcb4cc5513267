/**
 * What a device's user data holds: a small Ignition config that merges the node's
 * boot config, gzip-compressed as one piece, and writes the files only Terraform can
 * fill in (apply-time secrets and addresses).
 *
 * Why: every node's user data counts against a size budget (lib/user-data-size.ts).
 * Ignition's Metal provider does not take gzip'd user data as a whole (docs/facts.md),
 * but spec 3.3 allows `compression: gzip` on a merged config (`ignition.config.merge`)
 * as on file contents. One gzip stream over the whole config (units, scripts, manifests
 * as text) is about a third smaller than gzip file by file, because the files share
 * words and the stream shares its window across them.
 *
 * The files that hold a Terraform reference (cdktf token) stay in the outer config,
 * since their bytes are known only at apply time; Terraform's base64gzip() compresses
 * them there. Their paths are disjoint from the merged config's (composeConfig refuses
 * a path twice), so the order in which Ignition merges the two does not matter.
 */
import { gunzipSync } from "node:zlib";
import { hasToken, stableGzip } from "./node-files";
import { IgnitionConfig, IgnitionFile, IgnitionResource, IGNITION_SPEC_VERSION } from "./types";

function appliedAtApplyTime(file: IgnitionFile): boolean {
  return file.contents !== undefined && hasToken(file.contents.source);
}

/** The config a device receives: `config` with everything known at synth moved into one gzip'd merged config. */
export function packUserData(config: IgnitionConfig): IgnitionConfig {
  if (config.ignition.config) throw new Error("packUserData: the config already merges others; pack a node's own config once");
  const files = config.storage?.files ?? [];
  const applyTime = files.filter(appliedAtApplyTime);
  const bootFiles = files.filter((f) => !appliedAtApplyTime(f));
  const { files: _files, ...storage } = config.storage ?? {};
  const { storage: _storage, systemd, ...rest } = config;
  // Units before files: deflate matches repeats at most 32 KiB back (RFC 1951), and the
  // units sit nearer the scripts they run (renderNodeIgnition puts the large add-on
  // manifests last; docs/flatcar-boot.md). JSON key order means nothing to Ignition.
  const boot: IgnitionConfig = { ...rest, ...(systemd ? { systemd } : {}), storage: { ...(bootFiles.length > 0 ? { files: bootFiles } : {}), ...storage } };
  const json = JSON.stringify(boot);
  // A reference there would reach the node as the literal text `${TfToken[...]}`.
  if (hasToken(json)) throw new Error("packUserData: a Terraform reference sits outside a whole-file `base64` source (in a unit, a hook or a text file)");
  return {
    ignition: { version: IGNITION_SPEC_VERSION, config: { merge: [gzippedSource(json)] } },
    ...(applyTime.length > 0 ? { storage: { files: applyTime } } : {}),
  };
}

/** The config a `data:;base64,` merge source holds (gzip'd or not). */
export function readMergedConfig(resource: IgnitionResource): IgnitionConfig {
  const match = /^data:;base64,([A-Za-z0-9+/=]*)$/.exec(resource.source);
  if (!match) throw new Error(`merge source is not a base64 data URL: ${resource.source.slice(0, 40)}`);
  const bytes = Buffer.from(match[1], "base64");
  return JSON.parse((resource.compression === "gzip" ? gunzipSync(bytes) : bytes).toString("utf8")) as IgnitionConfig;
}

/** A merge source for `config`, gzip'd as packUserData does it. */
export function mergeSource(config: IgnitionConfig): IgnitionResource {
  return gzippedSource(JSON.stringify(config));
}

function gzippedSource(json: string): IgnitionResource {
  return { source: `data:;base64,${stableGzip(Buffer.from(json, "utf8")).toString("base64")}`, compression: "gzip" };
}

/**
 * The inverse, for readers of synthesized or applied user data (the report, the
 * rehearsal): the merged config's files, directories, links and units, then the outer
 * config's, in one config. Only `data:` merge sources are read.
 */
export function unpackUserData(config: IgnitionConfig): IgnitionConfig {
  const merged = (config.ignition.config?.merge ?? []).map((resource) => unpackUserData(readMergedConfig(resource)));
  const all = [...merged, config];
  const list = <T>(pick: (c: IgnitionConfig) => readonly T[] | undefined): T[] => all.flatMap((c) => [...(pick(c) ?? [])]);
  const files = list((c) => c.storage?.files);
  const directories = list((c) => c.storage?.directories);
  const links = list((c) => c.storage?.links);
  const units = list((c) => c.systemd?.units);
  const users = list((c) => c.passwd?.users);
  return {
    ignition: { version: config.ignition.version },
    ...(users.length > 0 ? { passwd: { users } } : {}),
    storage: {
      ...(files.length > 0 ? { files } : {}),
      ...(directories.length > 0 ? { directories } : {}),
      ...(links.length > 0 ? { links } : {}),
    },
    ...(units.length > 0 ? { systemd: { units } } : {}),
  };
}
