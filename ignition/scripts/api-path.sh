#!/bin/bash
# This node's own path to the Kubernetes API (docs/control-plane.md, "The node-local
# API path"). Connections the host itself opens to the `kubernetes` Service
# ClusterIP:port (kubeadm, the kubelet, kube-proxy, kubectl, hostNetwork pods) are
# DNAT'd in nftables' output hook straight to API servers that answer /readyz. The
# hook runs before kube-proxy's (priority -110 < -100), so the host needs neither
# kube-proxy nor the Metal routers carrying the Service range back into the cluster.
# Pods' traffic never passes the output hook and keeps kube-proxy's path.
#
# Candidates: the API servers Terraform knew when it wrote this node's user data,
# those the `kubernetes` EndpointSlice lists (learned every 30 s once the node has a
# kubelet.conf, kept across reboots, so a replaced control plane is picked up), and,
# on a control plane, the node itself. All are probed in parallel every 2 s. A server
# leaves the path only after V6FABRIC_API_DOWN_AFTER consecutive failed probes (4: about
# 8 s of failing, so a slow etcd member, which fails /readyz on every API server at
# once, does not make every node drop every server) and returns after
# V6FABRIC_API_UP_AFTER consecutive successes (3); the first round takes what answers.
# Each probe may take V6FABRIC_API_PROBE_TIMEOUT seconds (3: above the API server's own
# 2 s etcd readiness timeout, so a slow etcd shows as a failed /readyz, not a hung one).
# The ruleset is replaced atomically (one `nft -f` transaction) only when the ready set
# changes; the node's own connections to a server that left the set are reset. When
# none is ready (the first API server is still starting), every candidate gets traffic,
# so whichever answers first is used.
#
# `api-path watch` (v6fabric-api-path.service, Type=notify) installs the rules, tells
# systemd it is ready, then keeps them current; without `watch` it runs one round.
set -euo pipefail

service_ip=@KUBERNETES_SERVICE_IP@
port=@API_PORT@
table=@NFT_TABLE@
control_plane=@CONTROL_PLANE@
known=${V6FABRIC_API_SERVERS_FILE:-@API_SERVERS_FILE@}
learned=${V6FABRIC_API_SERVERS_LEARNED:-@STATE_DIR@/api-servers}
metadata=${V6FABRIC_METADATA_ENV:-/run/metadata/flatcar}
kubeconfig=${V6FABRIC_KUBECONFIG:-/etc/kubernetes/kubelet.conf}
# The cluster CA: kubeadm's copy once the node has joined (or Ignition's on a control
# plane), else the one Ignition wrote for discovery.
ca_files=${V6FABRIC_API_CA_FILES:-/etc/kubernetes/pki/ca.crt /etc/kubernetes/discovery/ca.crt}
interval=${V6FABRIC_API_PROBE_INTERVAL:-2}
probe_timeout=${V6FABRIC_API_PROBE_TIMEOUT:-3}
down_after=${V6FABRIC_API_DOWN_AFTER:-4}
up_after=${V6FABRIC_API_UP_AFTER:-3}
learn_every=${V6FABRIC_API_LEARN_EVERY:-15}
nft_command=${V6FABRIC_NFT_COMMAND:-nft}
curl_command=${V6FABRIC_CURL_COMMAND:-curl}
kubectl_command=${V6FABRIC_KUBECTL_COMMAND:-kubectl}

ipv6_lines() { grep -xE '[0-9a-fA-F:]*:[0-9a-fA-F:]*' || true; }

candidates() {
	{
		cat "$known" 2>/dev/null || true
		cat "$learned" 2>/dev/null || true
		if [ "$control_plane" = yes ]; then
			sed -n 's/^COREOS_PACKET_IPV6_PUBLIC_0=//p' "$metadata" 2>/dev/null | tr -d '"' || true
		fi
	} | ipv6_lines | sort -u
}

ca=
for file in $ca_files; do
	if [ -s "$file" ]; then
		ca=$file
		break
	fi
done

probe() {
	[ -n "$ca" ] || return 1
	"$curl_command" --silent --fail --output /dev/null --max-time "$probe_timeout" --cacert "$ca" "https://[$1]:$port/readyz"
}

ruleset() {
	printf '%s\n' "table ip6 $table" "delete table ip6 $table" "table ip6 $table {" "chain output {" "type nat hook output priority -110; policy accept;"
	if [ $# -eq 1 ]; then
		printf 'ip6 daddr %s tcp dport %s dnat to %s\n' "$service_ip" "$port" "$1"
	elif [ $# -gt 1 ]; then
		local map=() i=0 server
		for server in "$@"; do
			map+=("$i : $server")
			i=$((i + 1))
		done
		printf 'ip6 daddr %s tcp dport %s dnat to numgen random mod %s map { %s }\n' "$service_ip" "$port" $# "$(IFS=,; echo "${map[*]}")"
	fi
	printf '%s\n' "}"
	# Connections this path sent to a server that is no longer among them are reset at
	# their next packet, so their clients reconnect at once instead of waiting on an API
	# server that drains or a host that is gone. Only the host's own connections: their
	# packets in the original direction (this hook sees only locally generated ones).
	# A control plane's API server answering a connection that kube-proxy sent it (from a
	# pod or an outside client, to the same ClusterIP) sends in the reply direction.
	if [ $# -gt 0 ]; then
		printf '%s\n' "chain reset-unready {" "type filter hook output priority 0; policy accept;"
		printf 'meta l4proto tcp ct direction original ct original ip6 daddr %s ct original proto-dst %s ct reply ip6 saddr != { %s } reject with tcp reset\n' "$service_ip" "$port" "$(IFS=,; echo "$*")"
		printf '%s\n' "}"
	fi
	printf '%s\n' "}"
}

current='unset'
first=true
declare -A fails=() oks=() in=()
round() {
	local all=() ready=() pids=() i server now
	mapfile -t all < <(candidates)
	for i in "${!all[@]}"; do
		probe "${all[$i]}" &
		pids[i]=$!
	done
	for i in "${!all[@]}"; do
		server=${all[$i]}
		if wait "${pids[$i]}"; then
			oks[$server]=$((${oks[$server]:-0} + 1))
			fails[$server]=0
			if $first || [ "${oks[$server]}" -ge "$up_after" ]; then in[$server]=1; fi
		else
			fails[$server]=$((${fails[$server]:-0} + 1))
			oks[$server]=0
			if $first || [ "${fails[$server]}" -ge "$down_after" ]; then unset "in[$server]"; fi
		fi
		if [ -n "${in[$server]:-}" ]; then ready+=("$server"); fi
	done
	first=false
	[ ${#ready[@]} -gt 0 ] || ready=("${all[@]}")
	now="${ready[*]}"
	[ "$now" != "$current" ] || return 0
	ruleset "${ready[@]}" | "$nft_command" -f -
	echo "api-path: [$service_ip]:$port -> ${now:-nothing (no API server known yet)}"
	current=$now
}

learn() {
	[ -s "$kubeconfig" ] || return 0
	local found
	found=$("$kubectl_command" --kubeconfig "$kubeconfig" --request-timeout=5s -n default get endpointslices.discovery.k8s.io kubernetes \
		-o 'jsonpath={range .endpoints[*]}{.addresses[0]}{"\n"}{end}' 2>/dev/null) || return 0
	found=$(ipv6_lines <<<"$found" | sort -u)
	[ -n "$found" ] || return 0
	if [ "$found" != "$(cat "$learned" 2>/dev/null || true)" ]; then
		mkdir -p "$(dirname "$learned")"
		printf '%s\n' "$found" >"$learned.new"
		mv "$learned.new" "$learned"
		echo "api-path: the kubernetes EndpointSlice lists $(paste -sd ' ' <<<"$found")"
	fi
}

learn
round
[ "${1:-}" = watch ] || exit 0
if [ -n "${NOTIFY_SOCKET:-}" ]; then systemd-notify --ready; fi
echo "api-path: ready; probing every ${interval}s"
rounds=0
while sleep "$interval"; do
	rounds=$((rounds + 1))
	if [ $((rounds % learn_every)) -eq 0 ]; then learn; fi
	round
done
