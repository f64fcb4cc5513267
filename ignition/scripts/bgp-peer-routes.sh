#!/bin/bash
# Adds a /128 route to each IPv6 BGP peer of this server via the server's public
# IPv6 gateway (what Equinix's network-helpers configure for BIRD/FRR). The peers
# are listed only in the metadata JSON (bgp_neighbors[].peer_ips), not in
# /run/metadata/flatcar. `ip route replace` makes reruns harmless.
set -euo pipefail

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

for peer in "${peers[@]}"; do
	if ! [[ $peer =~ ^[0-9a-fA-F:]+$ && $peer == *:* ]]; then
		echo "bgp-peer-routes: ignoring peer '$peer': not an IPv6 address" >&2
		continue
	fi
	"$ip_command" -6 route replace "$peer/128" via "$gateway"
	echo "bgp-peer-routes: $peer/128 via $gateway"
done
