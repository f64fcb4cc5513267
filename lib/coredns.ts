/**
 * Cluster DNS configuration: the Corefile of kubeadm's CoreDNS, as the add-on that
 * replaces kubeadm's `kube-system/coredns` ConfigMap (docs/nat64.md).
 *
 * Pure: a typed Corefile model, serialized once by `renderCorefile`, and the ConfigMap
 * through lib/yaml.ts. The server block is kubeadm's own (Kubernetes 1.36,
 * cmd/kubeadm/app/phases/addons/dns/manifests.go: errors, health, ready, kubernetes,
 * prometheus, forward, cache, loop, reload, loadbalance, in that order) with two
 * changes:
 * - `forward` goes to the DNS_UPSTREAM_RESOLVERS addresses (IPv6: pods have no IPv4)
 *   instead of /etc/resolv.conf, which the kubelet fills from the same list;
 * - with NAT64, `dns64` synthesizes 64:ff9b::/96 AAAA answers for names that have an A
 *   record but no AAAA (CoreDNS dns64 plugin; RFC 6147). Names with an AAAA record are
 *   answered as they are. CoreDNS runs its plugins in its compiled order (plugin.cfg:
 *   dns64 before kubernetes and forward), whatever the order in the block.
 * The `reload` plugin makes the running CoreDNS pick the new Corefile up (about a
 * minute for the kubelet to update the mounted ConfigMap).
 */
import { toYaml } from "./yaml";

/** One Corefile directive: a plugin (or a plugin's option) with its arguments and an optional block. */
export interface CorefileDirective {
  readonly name: string;
  readonly args?: readonly string[];
  readonly block?: readonly CorefileDirective[];
}

/** A server block: the zones and port it serves, and its plugins. */
export interface CorefileServerBlock {
  readonly keys: readonly string[];
  readonly directives: readonly CorefileDirective[];
}

export interface CorefileInput {
  /** CLUSTER_DOMAIN. */
  readonly clusterDomain: string;
  /** DNS_UPSTREAM_RESOLVERS: IPv6 addresses `forward` sends every other name to. */
  readonly upstreamResolvers: readonly string[];
  /** The NAT64 prefix dns64 synthesizes into, or undefined without NAT64 (NAT64_ENABLED=false). */
  readonly dns64Prefix?: string;
}

/** Names of the plugins the tests and the rehearsal look for. */
export const COREFILE_PLUGINS = { kubernetes: "kubernetes", dns64: "dns64", forward: "forward" } as const;

export function corefileServerBlock(input: CorefileInput): CorefileServerBlock {
  const d = (name: string, args: readonly string[] = [], block?: readonly CorefileDirective[]): CorefileDirective => ({
    name,
    ...(args.length > 0 ? { args } : {}),
    ...(block ? { block } : {}),
  });
  return {
    keys: [".:53"],
    directives: [
      d("errors"),
      d("health", [], [d("lameduck", ["5s"])]),
      d("ready"),
      d(COREFILE_PLUGINS.kubernetes, [input.clusterDomain, "in-addr.arpa", "ip6.arpa"], [
        d("pods", ["insecure"]),
        d("fallthrough", ["in-addr.arpa", "ip6.arpa"]),
        d("ttl", ["30"]),
      ]),
      ...(input.dns64Prefix !== undefined ? [d(COREFILE_PLUGINS.dns64, [], [d("prefix", [input.dns64Prefix])])] : []),
      d("prometheus", [":9153"]),
      d(COREFILE_PLUGINS.forward, [".", ...input.upstreamResolvers], [d("max_concurrent", ["1000"])]),
      d("cache", ["30"], [d("disable", ["success", input.clusterDomain]), d("disable", ["denial", input.clusterDomain])]),
      d("loop"),
      d("reload"),
      d("loadbalance"),
    ],
  };
}

function renderDirective(directive: CorefileDirective, indent: string): string[] {
  const head = `${indent}${[directive.name, ...(directive.args ?? [])].join(" ")}`;
  if (!directive.block) return [head];
  return [`${head} {`, ...directive.block.flatMap((inner) => renderDirective(inner, `${indent}    `)), `${indent}}`];
}

/** The Corefile text of server blocks (the one serializer of the model). */
export function renderCorefile(blocks: readonly CorefileServerBlock[]): string {
  return blocks.map((b) => [`${b.keys.join(" ")} {`, ...b.directives.flatMap((d) => renderDirective(d, "    ")), "}"].join("\n")).join("\n") + "\n";
}

/** Where the init node keeps the DNS add-on (beside the Calico and security add-ons). */
export const DNS_ADDON_PATH = "/etc/kubernetes/addons/dns/50-coredns-corefile.yaml";

/** kubeadm's ConfigMap (cmd/kubeadm/app/constants: CoreDNSConfigMap), with our Corefile. */
export function corednsConfigMap(input: CorefileInput): object {
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: "coredns", namespace: "kube-system" },
    data: { Corefile: renderCorefile([corefileServerBlock(input)]) },
  };
}

export function dnsAddonManifest(input: CorefileInput): { readonly path: string; readonly yaml: string } {
  return { path: DNS_ADDON_PATH, yaml: toYaml(corednsConfigMap(input)) };
}
