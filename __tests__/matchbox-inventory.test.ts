/**
 * NODE_TARGET=matchbox: the machine inventory (MATCHBOX_INVENTORY) is checked when
 * settings load, and each mistake stops synth with a message that names the machine,
 * the setting, the value and what is valid.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { SettingsError, loadSettings } from "../lib/settings";

const root = path.join(__dirname, "..");
const example = JSON.parse(fs.readFileSync(path.join(root, "examples", "matchbox-inventory.json"), "utf8"));
let dir: string;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "v6fabric-inventory-"));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

let count = 0;
/** Writes `inventory` to a file of its own and returns its path. */
function write(inventory: unknown): string {
  const file = path.join(dir, `inventory-${++count}.json`);
  fs.writeFileSync(file, typeof inventory === "string" ? inventory : JSON.stringify(inventory, null, 2));
  return file;
}

/** The example, changed by `edit` (a deep copy). */
function changed(edit: (machines: any[]) => void): any {
  const copy = JSON.parse(JSON.stringify(example));
  edit(copy.machines);
  return copy;
}

function problems(env: Record<string, string>): readonly string[] {
  try {
    loadSettings(env);
  } catch (err) {
    if (err instanceof SettingsError) return err.problems;
    throw err;
  }
  throw new Error("the settings loaded");
}

const matchbox = (file: string, extra: Record<string, string> = {}) => ({ NODE_TARGET: "matchbox", MATCHBOX_INVENTORY: file, ...extra });

test("the README's example inventory loads: 3 control planes and 2 workers, in file order, with their neighbours", () => {
  const settings = loadSettings(matchbox(path.join(root, "examples", "matchbox-inventory.json")));
  expect(settings.target).toBe("matchbox");
  expect([settings.controlPlaneCount, settings.workerCount]).toEqual([3, 2]);
  const machines = settings.matchbox!.inventory.machines;
  expect(machines.map((m) => m.name)).toEqual(["v6fabric-cp-1", "v6fabric-cp-2", "v6fabric-cp-3", "v6fabric-worker-01", "v6fabric-worker-02"]);
  expect(machines[0]).toMatchObject({ mac: "52:54:00:6f:00:01", ipv6: "2001:db8:0:ab00::11", ipv6PrefixLength: 64, gateway: "2001:db8:0:ab00::1", installDisk: "/dev/sda" });
  expect(machines[3].installDisk).toBe("/dev/nvme0n1");
  // Two racks: the workers peer with their own rack's routers.
  expect(machines[0].neighbors).toEqual([{ address: "2001:db8:0:ab00::2", asn: 65100 }, { address: "2001:db8:0:ab00::3", asn: 65100 }]);
  expect(machines[4].neighbors).toEqual([{ address: "2001:db8:0:ab01::2", asn: 65100 }, { address: "2001:db8:0:ab01::3", asn: 65100 }]);
});

test("the default target is still metal and needs no inventory", () => {
  const settings = loadSettings({});
  expect(settings.target).toBe("metal");
  expect(settings.matchbox).toBeUndefined();
});

test("a misspelled machine field names the machine, the setting, the file and the field it was probably meant to be", () => {
  const file = write(changed((m) => {
    m[1].adress = m[1].address;
    delete m[1].address;
  }));
  const found = problems(matchbox(file));
  expect(found).toContain(
    `MATCHBOX_INVENTORY=${file} is not valid: machine "v6fabric-cp-2": field "adress" is not known: did you mean "address"? valid fields are name, role, mac, address, gateway, privateIpv4, neighbors, installDisk`,
  );
  expect(found).toContain(`MATCHBOX_INVENTORY=${file} is not valid: machine "v6fabric-cp-2": field "address" is missing`);
});

test("misspelled neighbour and top-level fields get a suggestion too", () => {
  const neighbour = write(changed((m) => (m[4].neighbors[1] = { address: "2001:db8:0:ab00::3", asnumber: 65100 })));
  expect(problems(matchbox(neighbour)).join("\n")).toContain(`machine "v6fabric-worker-02": neighbour #2: field "asnumber" is not known: did you mean "asn"?`);
  const top = write({ machine: example.machines });
  expect(problems(matchbox(top)).join("\n")).toContain(`MATCHBOX_INVENTORY=${top} is not valid: the file: field "machine" is not known: did you mean "machines"?`);
});

test("a duplicate MAC names both machines and the MAC", () => {
  const file = write(changed((m) => (m[4].mac = "52-54-00-6F-00-02")));
  expect(problems(matchbox(file))).toEqual([
    `MATCHBOX_INVENTORY=${file} is not valid: machine "v6fabric-worker-02": mac 52:54:00:6f:00:02 is also machine "v6fabric-cp-2"'s: each machine needs its own`,
  ]);
});

test("an address outside the cluster block names the machine, the address, the block and the range that is valid", () => {
  const file = write(changed((m) => (m[2].address = "2001:db8:0:cd00::13/64")));
  expect(problems(matchbox(file))).toContainEqual(
    expect.stringMatching(
      new RegExp(
        `^MATCHBOX_INVENTORY=${file} is not valid: machine "v6fabric-cp-3": address 2001:db8:0:cd00::13/64 is outside 2001:db8:0:ab00::/60, the node range of CLUSTER_IPV6_BLOCK=2001:db8:0:ab00::/56 .*give an address in 2001:db8:0:ab00::/60$`,
      ),
    ),
  );
  // Inside the block but in the pod zone is outside the node range as well.
  const pods = write(changed((m) => (m[2].address = "2001:db8:0:ab10::13/64")));
  expect(problems(matchbox(pods)).join("\n")).toContain(`machine "v6fabric-cp-3": address 2001:db8:0:ab10::13/64 is outside 2001:db8:0:ab00::/60`);
  // The block the setting names is the one checked.
  const other = problems(matchbox(path.join(root, "examples", "matchbox-inventory.json"), { CLUSTER_IPV6_BLOCK: "2001:db8:0:cd00::/56" }));
  expect(other).toHaveLength(5);
  expect(other[0]).toContain(`machine "v6fabric-cp-1": address 2001:db8:0:ab00::11/64 is outside 2001:db8:0:cd00::/60, the node range of CLUSTER_IPV6_BLOCK=2001:db8:0:cd00::/56`);
});

test("a machine without a neighbour names the machine and what to write", () => {
  const empty = write(changed((m) => (m[3].neighbors = [])));
  expect(problems(matchbox(empty))).toContainEqual(
    `MATCHBOX_INVENTORY=${empty} is not valid: machine "v6fabric-worker-01": neighbors [] is not valid: list at least one BGP neighbour, e.g. [{"address": "2001:db8:0:ab00::2", "asn": 65530}]: a node without one announces nothing`,
  );
  const missing = write(changed((m) => delete m[0].neighbors));
  expect(problems(matchbox(missing))).toContainEqual(`MATCHBOX_INVENTORY=${missing} is not valid: machine "v6fabric-cp-1": field "neighbors" is missing`);
});

test("other mistakes: role, MAC, gateway off the network, private IPv4, the cluster's own AS, an even number of control planes, differing neighbours", () => {
  const file = write(
    changed((m) => {
      m[0].role = "controlplane";
      m[1].mac = "52:54:00:6f:00";
      m[2].gateway = "2001:db8:0:ab01::1";
      m[3].privateIpv4 = "192.168.1.4";
      m[4].neighbors = [{ address: "2001:db8:0:ab00::2", asn: 65000 }];
    }),
  );
  const found = problems(matchbox(file)).join("\n");
  expect(found).toContain(`machine "v6fabric-cp-1": role "controlplane" is not valid: use control-plane or worker`);
  expect(found).toContain(`machine "v6fabric-cp-2": mac "52:54:00:6f:00" is not valid`);
  expect(found).toContain(`machine "v6fabric-cp-3": gateway 2001:db8:0:ab01::1 is not on the machine's network 2001:db8:0:ab00::/64`);
  expect(found).toContain(`machine "v6fabric-worker-01": privateIpv4 "192.168.1.4" is not valid: give an IPv4 address in 10.0.0.0/8`);
  expect(found).toContain(`machine "v6fabric-worker-02": neighbour #1: asn 65000 is the cluster's own AS (METAL_BGP_ASN)`);

  const two = write(changed((m) => (m[2].role = "worker")));
  expect(problems(matchbox(two))).toEqual([`MATCHBOX_INVENTORY=${two} is not valid: it lists 2 control-plane machines: etcd needs an odd number of members, list 1, 3 or 5`]);
  // Machines may name different routers (racks), but a router has one AS.
  const rack = write(changed((m) => (m[4].neighbors = [{ address: "2001:db8:0:ab01::3", asn: 65100 }])));
  expect(loadSettings(matchbox(rack)).matchbox!.inventory.machines[4].neighbors).toEqual([{ address: "2001:db8:0:ab01::3", asn: 65100 }]);
  const twoAs = write(changed((m) => (m[4].neighbors = [{ address: "2001:db8:0:ab00::2", asn: 65101 }])));
  expect(problems(matchbox(twoAs))).toEqual([
    `MATCHBOX_INVENTORY=${twoAs} is not valid: machine "v6fabric-worker-02": neighbour 2001:db8:0:ab00::2 has asn 65101, but machine "v6fabric-cp-1" gives it 65100: a router has one AS, give the same on every machine that peers with it`,
  ]);
});

test("the target's own settings: the inventory is required, the node counts come from it, a bad endpoint is refused", () => {
  expect(problems({ NODE_TARGET: "matchbox" })).toEqual([
    `MATCHBOX_INVENTORY is not set: NODE_TARGET=matchbox needs the path of your machines' inventory (README "Your own bare metal" has an example)`,
  ]);
  const missing = path.join(dir, "absent.json");
  expect(problems(matchbox(missing))).toEqual([`MATCHBOX_INVENTORY=${missing} is not valid: the file cannot be read (ENOENT); give the path of your machines' JSON inventory`]);
  const ok = path.join(root, "examples", "matchbox-inventory.json");
  expect(problems(matchbox(ok, { WORKER_COUNT: "2" }))).toEqual([
    `WORKER_COUNT=2 is not valid with NODE_TARGET=matchbox: MATCHBOX_INVENTORY lists the machines and their roles; unset WORKER_COUNT`,
  ]);
  expect(problems(matchbox(ok, { MATCHBOX_HTTP_ENDPOINT: "http://mb:8080/" }))[0]).toMatch(/^MATCHBOX_HTTP_ENDPOINT=http:\/\/mb:8080\/ is not valid: give only the scheme/);
  expect(problems({ NODE_TARGET: "maas" })).toEqual([`NODE_TARGET=maas is not valid: must be one of metal, matchbox`]);
  expect(problems(matchbox(ok, { MATCHBOX_INVENTROY: ok }))[0]).toBe(
    "MATCHBOX_INVENTROY is not a setting: did you mean MATCHBOX_INVENTORY? Rename or unset the variable; if another tool reads it, add it to NOT_SETTINGS in lib/settings.ts.",
  );
});

test("`npm run synth` stops on an inventory mistake, says which machine, and writes nothing", () => {
  const file = write(changed((m) => (m[1].mac = m[0].mac)));
  const outdir = path.join(dir, "out");
  const result = spawnSync(process.execPath, ["-r", "ts-node/register/transpile-only", "main.ts"], {
    cwd: root,
    env: { ...process.env, ...matchbox(file), CDKTF_OUTDIR: outdir, CHECKPOINT_DISABLE: "1" },
    encoding: "utf8",
  });
  expect(result.status).toBe(1);
  expect(result.stderr).toContain(`MATCHBOX_INVENTORY=${file} is not valid: machine "v6fabric-cp-2": mac 52:54:00:6f:00:01 is also machine "v6fabric-cp-1"'s`);
  // The App makes its (empty) stacks folder before settings load; no stack is written into it.
  const stacks = path.join(outdir, "stacks");
  expect(fs.existsSync(stacks) ? fs.readdirSync(stacks) : []).toEqual([]);
  expect(fs.existsSync(path.join(outdir, "manifest.json"))).toBe(false);
});
