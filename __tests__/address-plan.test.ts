import { BlockList } from "node:net";
import { AddressPlanError, Ipv6Cidr, planAddresses } from "../lib/address-plan";

// Expectations are computed here with plain string work on the 32 hex digits of the
// address (not the implementation's integer math), and checked with node's BlockList.
function hexDigits(address: string): string[] {
  const [head, tail = ""] = address.split("::");
  const groups = (s: string) => (s === "" ? [] : s.split(":"));
  const h = groups(head);
  const t = address.includes("::") ? groups(tail) : [];
  const all = [...h, ...Array(8 - h.length - t.length).fill("0"), ...t];
  return all.flatMap((g) => g.padStart(4, "0").split(""));
}

function fromHexDigits(d: string[]): string {
  const groups = Array.from({ length: 8 }, (_, i) => d.slice(i * 4, i * 4 + 4).join(""));
  return groups.join(":");
}

/** The zone-th sixteenth of a nibble-aligned block, truncated to `length`, as expanded text. */
function expectedZone(block: string, zone: number, length: number): string {
  const [address, prefix] = block.split("/");
  const d = hexDigits(address);
  d[Number(prefix) / 4] = zone.toString(16);
  return `${fromHexDigits(d)}/${length}`;
}

function expanded(cidr: Ipv6Cidr | string): string {
  const [a, l] = String(cidr).split("/");
  return `${fromHexDigits(hexDigits(a))}/${l}`;
}

describe.each([
  ["a Metal /56", "2001:db8:0:ab00::/56"],
  ["a /48", "2001:db8:abcd::/48"],
  ["a /60", "2604:1380:4641:c9f0::/60"],
])("address plan for %s", (_label, block) => {
  const plan = planAddresses(block);

  test("pods get the first /64 of zone 1", () => {
    expect(expanded(plan.podCidr)).toBe(expectedZone(block, 1, 64));
  });

  test("Services get the first /108 of zone 2, the largest range kubeadm accepts", () => {
    expect(expanded(plan.serviceCidr)).toBe(expectedZone(block, 2, 108));
  });

  test("external and LoadBalancer IPs get the first /112 of zone 3", () => {
    expect(expanded(plan.externalCidr)).toBe(expectedZone(block, 3, 112));
  });

  test("every range lies inside the block and outside the node range, and none overlap", () => {
    const inBlock = new BlockList();
    const [a, l] = block.split("/");
    inBlock.addSubnet(a, Number(l), "ipv6");
    const nodes = new BlockList();
    const [na, nl] = String(plan.nodeRange).split("/");
    nodes.addSubnet(na, Number(nl), "ipv6");
    const ranges = [plan.podCidr, plan.serviceCidr, plan.externalCidr];
    for (const r of ranges) {
      const [ra] = String(r).split("/");
      expect(inBlock.check(ra, "ipv6")).toBe(true);
      expect(nodes.check(ra, "ipv6")).toBe(false);
    }
    for (const x of ranges) for (const y of ranges) if (x !== y) expect(x.overlaps(y)).toBe(false);
  });

  test("the node range covers the first /64, where Metal assigns device /127s", () => {
    const firstDevice = Ipv6Cidr.parse(`${fromHexDigits(hexDigits(block.split("/")[0]))}/127`);
    expect(plan.nodeRange.contains(firstDevice)).toBe(true);
    expect(plan.nodeRange.contains(Ipv6Cidr.parse(expectedZone(block, 0, 64)))).toBe(true);
  });

  test("the kubernetes Service and cluster DNS IPs are the 1st and 10th of the service range", () => {
    const base = hexDigits(String(plan.serviceCidr).split("/")[0]);
    const withLast = (n: string) => fromHexDigits([...base.slice(0, 31), n]);
    expect(fromHexDigits(hexDigits(plan.kubernetesServiceIp))).toBe(withLast("1"));
    expect(fromHexDigits(hexDigits(plan.clusterDnsIp))).toBe(withLast("a"));
  });
});

test("the plan for the documentation default reads as the README table says", () => {
  const plan = planAddresses("2001:db8:0:ab00::/56");
  expect([plan.podCidr, plan.serviceCidr, plan.externalCidr].map(String)).toEqual([
    "2001:db8:0:ab10::/64",
    "2001:db8:0:ab20::/108",
    "2001:db8:0:ab30::/112",
  ]);
});

describe("bad blocks are rejected with the value and what is valid", () => {
  test.each([
    ["10.0.0.0/8", /"10\.0\.0\.0\/8" is not an IPv6 prefix/],
    ["2001:db8::/120", /is a \/120: the plan needs a block from \/32 to \/60/],
    ["2001:db8::/64", /is a \/64: the plan needs a block from \/32 to \/60/],
    ["2001::/16", /is a \/16: the plan needs a block from \/32 to \/60/],
    ["2001:db8:0:ab01::/56", /has host bits set: the \/56 that contains it is 2001:db8:0:ab00::\/56/],
    ["fd00:1::/56", /not global unicast IPv6 \(2000::\/3\)/],
    ["2001:db8:0:ab00::", /has no prefix length/],
    ["2001:db8::/abc", /invalid prefix length "abc"/],
    ["2001:db8::/129", /invalid prefix length "129"/],
    ["not-a-cidr/56", /is not an IPv6 prefix/],
  ])("%s", (block, message) => {
    expect(() => planAddresses(block)).toThrow(AddressPlanError);
    expect(() => planAddresses(block)).toThrow(message);
  });
});
