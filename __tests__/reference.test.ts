/**
 * reference/ holds what the tests compare against (schemas derived from upstream, the
 * Ignition apply check). Its checksums are recorded, so an edit by hand fails here
 * instead of silently weakening a check (reference/README.md says how to refresh it).
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { REFERENCE_DIR } from "./support/reference";

const recorded = new Map(
  fs
    .readFileSync(path.join(REFERENCE_DIR, "SHA256SUMS"), "utf8")
    .trim()
    .split("\n")
    .map((line) => {
      const [sum, file] = line.split(/\s+/);
      return [file, sum] as const;
    }),
);

function filesUnder(dir: string): string[] {
  return fs.readdirSync(path.join(REFERENCE_DIR, dir), { withFileTypes: true }).flatMap((entry) => {
    const relative = path.posix.join(dir, entry.name);
    return entry.isDirectory() ? filesUnder(relative) : [relative];
  });
}

test("every reference file is recorded in SHA256SUMS, and nothing recorded is missing", () => {
  const present = [...filesUnder("schemas"), ...filesUnder("tools"), ...filesUnder("upstream")].sort();
  expect(present).toEqual([...recorded.keys()].sort());
  // The three schema sets and the apply check the tests rely on.
  expect(present).toEqual(
    expect.arrayContaining([
      "schemas/metal/equinix-metal-3.3.0.schema.json",
      "schemas/kubeadm/InitConfiguration.schema.json",
      "schemas/kubeadm/KubeletConfiguration.schema.json",
      "schemas/calico/BGPPeer.schema.json",
      "tools/ignition-apply-check.sh",
      "upstream/calico-v3.32.1/operator-crds.yaml",
    ]),
  );
});

test.each([...recorded.entries()])("%s has its recorded checksum", (file, sum) => {
  const actual = createHash("sha256").update(fs.readFileSync(path.join(REFERENCE_DIR, file))).digest("hex");
  expect(actual).toBe(sum);
});
