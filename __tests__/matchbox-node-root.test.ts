/**
 * How the Matchbox fabric rehearsal makes a node of what Matchbox serves
 * (rehearsal/matchbox-cluster.ts, rehearsal/node-root.ts), without root: the node's link
 * from the config's systemd-networkd file, and the downloads blanked two merges deep (the
 * served config merges the Metal user data, which merges the gzip'd boot config).
 * Expectations are literals.
 */
import { gunzipSync } from "node:zlib";
import { uplinkNetwork } from "../ignition/matchbox";
import { mergeSource } from "../ignition/user-data";
import { IgnitionConfig } from "../ignition/types";
import { uplinkAddresses } from "../rehearsal/matchbox-cluster";
import { withoutDownloads } from "../rehearsal/node-root";

test("the node's link is what its network file says: the IPv6 address and length, the gateway, the private IPv4 without a gateway", () => {
  const file = uplinkNetwork({
    hostname: "v6fabric-worker-01",
    mac: "52:54:00:6f:00:04",
    ipv6: "2001:db8:0:ab01::14",
    ipv6PrefixLength: 64,
    gateway: "2001:db8:0:ab01::1",
    privateIpv4: "10.70.0.14",
    clusterAsn: 65000,
    neighbors: [{ address: "2001:db8:0:ab01::2", asn: 65100 }],
  });
  expect(uplinkAddresses(file)).toEqual({ ipv6: "2001:db8:0:ab01::14", ipv6PrefixLength: 64, ipv6Gateway: "2001:db8:0:ab01::1", privateIpv4: "10.70.0.14" });
  expect(() => uplinkAddresses("[Network]\nDHCP=ipv4\n")).toThrow(/no IPv6 address, IPv4 address or gateway/);
});

test("a download two merges deep is blanked, its neighbours and the outer configs kept", () => {
  const download = { path: "/opt/bin/kubeadm", mode: 0o755, contents: { source: "https://dl.k8s.io/v1.36.3/bin/linux/amd64/kubeadm", verification: { hash: "sha512-00" } } };
  const inline = { path: "/etc/hostname", mode: 0o644, contents: { source: "data:,v6fabric-worker-01" } };
  const boot: IgnitionConfig = { ignition: { version: "3.3.0" }, storage: { files: [download, inline] } };
  const metal: IgnitionConfig = { ignition: { version: "3.3.0", config: { merge: [mergeSource(boot)] } } };
  const metadata = { path: "/etc/v6fabric/metadata/flatcar", mode: 0o644, contents: { source: "data:,COREOS_PACKET_HOSTNAME%3Dv6fabric-worker-01" } };
  const served = { ignition: { version: "3.4.0", config: { merge: [{ source: `data:;base64,${Buffer.from(JSON.stringify(metal)).toString("base64")}` }] } }, storage: { files: [metadata] } };

  const offline = JSON.parse(withoutDownloads(JSON.stringify(served)));
  expect(offline.ignition.version).toBe("3.4.0");
  expect(offline.storage.files).toEqual([metadata]);
  const read = (resource: { source: string; compression?: string }) => {
    const bytes = Buffer.from(resource.source.replace(/^data:;base64,/, ""), "base64");
    return JSON.parse((resource.compression === "gzip" ? gunzipSync(bytes) : bytes).toString("utf8"));
  };
  const metalOffline = read(offline.ignition.config.merge[0]);
  const bootOffline = read(metalOffline.ignition.config.merge[0]);
  expect(bootOffline.storage.files).toEqual([{ ...download, contents: { source: "data:," } }, inline]);
});
