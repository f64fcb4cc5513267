#!/bin/bash
# Adds a /128 route to each IPv6 BGP peer of this server via the server's public
# IPv6 gateway (what Equinix's network-helpers configure for BIRD/FRR). The peers
# the cluster's BGPPeers name (rendered from the same list as the host policy) must be
# the ones Metal lists for this server in the metadata JSON (bgp_neighbors[].peer_ips,
# not in /run/metadata/flatcar): when they differ, the sessions to the missing ones can
# never come up, so the script says which differ and fails. A timer runs it every
# minute: `ip route replace` makes reruns harmless, and a route that a network
# reconfiguration removed is back within a minute.
set -euo pipefail

configured=${V6FABRIC_BGP_PEERS:-@BGP_PEERS@}
metadata=${V6FABRIC_METADATA_ENV:-/run/metadata/flatcar}
metadata_url=${V6FABRIC_METADATA_URL:-https://metadata.platformequinix.com/metadata}
ip_command=${V6FABRIC_IP_COMMAND:-ip}

gateway=$(sed -n 's/^COREOS_PACKET_IPV6_PUBLIC_GATEWAY_0=//p' "$metadata" 2>/dev/null | head -n 1 || true)
gateway=${gateway//\"/}
if ! [[ $gateway =~ ^[0-9a-fA-F:]+$ && $gateway == *:* ]]; then
	echo "bgp-peer-routes: no IPv6 gateway (COREOS_PACKET_IPV6_PUBLIC_GATEWAY_0) in $metadata" >&2
	exit 1
fi

if [[ $metadata_url == file://* ]]; then
	document=$(cat "${metadata_url#file://}")
else
	document=$(curl --fail --silent --show-error --retry 5 --retry-delay 3 --max-time 30 "$metadata_url")
fi

if ! jq -e 'type == "object"' >/dev/null <<<"$document"; then
	echo "bgp-peer-routes: $metadata_url did not return a JSON object" >&2
	exit 1
fi
mapfile -t peers < <(jq -r '.bgp_neighbors[]? | select(.address_family == 6) | .peer_ips[]?' <<<"$document" | sort -u)
if [ ${#peers[@]} -eq 0 ]; then
	# The BGP session is created after the device; until then the metadata has none.
	echo "bgp-peer-routes: the metadata lists no IPv6 BGP neighbours yet; will retry" >&2
	exit 1
fi

listed=()
for peer in "${peers[@]}"; do
	if ! [[ $peer =~ ^[0-9a-fA-F:]+$ && $peer == *:* ]]; then
		echo "bgp-peer-routes: ignoring peer '$peer': not an IPv6 address" >&2
		continue
	fi
	listed+=("$peer")
done

status=0
for peer in $configured; do
	if printf '%s\n' "${listed[@]}" | grep -qxF "$peer"; then
		"$ip_command" -6 route replace "$peer/128" via "$gateway"
		echo "bgp-peer-routes: $peer/128 via $gateway"
	else
		echo "bgp-peer-routes: the cluster peers with $peer but Metal lists no session to it for this server (metadata peers: ${listed[*]})" >&2
		status=1
	fi
done
for peer in "${listed[@]}"; do
	if ! grep -qxF "$peer" <<<"${configured// /$'\n'}"; then
		echo "bgp-peer-routes: Metal lists the BGP peer $peer for this server, but the cluster has no BGPPeer for it (cluster peers: $configured)" >&2
		status=1
	fi
done
exit "$status"
