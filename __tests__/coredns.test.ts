/**
 * Cluster DNS (lib/coredns.ts): the Corefile is kubeadm 1.36's own (written out below
 * from cmd/kubeadm/app/phases/addons/dns/manifests.go) with the upstream resolvers and,
 * with NAT64, dns64. The real CoreDNS runs it in the NAT64 rehearsal.
 */
import YAML from "yaml";
import { corednsConfigMap, dnsAddonManifest, renderCorefile, corefileServerBlock } from "../lib/coredns";

const KUBEADM_WITH_DNS64 = `.:53 {
    errors
    health {
        lameduck 5s
    }
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }
    dns64 {
        prefix 64:ff9b::/96
    }
    prometheus :9153
    forward . 2001:4860:4860::8888 2606:4700:4700::1111 {
        max_concurrent 1000
    }
    cache 30 {
        disable success cluster.local
        disable denial cluster.local
    }
    loop
    reload
    loadbalance
}
`;

const input = { clusterDomain: "cluster.local", upstreamResolvers: ["2001:4860:4860::8888", "2606:4700:4700::1111"], dns64Prefix: "64:ff9b::/96" };

test("kubeadm's Corefile, forwarding to the IPv6 resolvers, with dns64 into the Well-Known Prefix", () => {
  expect(renderCorefile([corefileServerBlock(input)])).toBe(KUBEADM_WITH_DNS64);
});

test("without NAT64 there is no dns64: IPv4-only names get no AAAA answer", () => {
  const text = renderCorefile([corefileServerBlock({ ...input, dns64Prefix: undefined })]);
  expect(text).not.toContain("dns64");
  expect(text).toBe(KUBEADM_WITH_DNS64.replace("    dns64 {\n        prefix 64:ff9b::/96\n    }\n", ""));
});

test("the cluster domain is the kubernetes zone and is never cached as success or denial", () => {
  const text = renderCorefile([corefileServerBlock({ ...input, clusterDomain: "fabric.example" })]);
  expect(text).toContain("kubernetes fabric.example in-addr.arpa ip6.arpa {");
  expect(text).toContain("disable success fabric.example");
  expect(text).toContain("disable denial fabric.example");
});

test("the add-on is kubeadm's kube-system/coredns ConfigMap, read back as YAML 1.1 the way kubectl would", () => {
  const manifest = dnsAddonManifest(input);
  expect(manifest.path).toBe("/etc/kubernetes/addons/dns/50-coredns-corefile.yaml");
  const docs = YAML.parseAllDocuments(manifest.yaml, { version: "1.1" }).map((d) => d.toJS());
  expect(docs).toEqual([{ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "coredns", namespace: "kube-system" }, data: { Corefile: KUBEADM_WITH_DNS64 } }]);
  expect(corednsConfigMap(input)).toEqual(docs[0]);
  // A literal block: the Corefile reads on the node as it reads here.
  expect(manifest.yaml).toContain("  Corefile: |\n    .:53 {\n");
});
