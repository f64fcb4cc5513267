#!/bin/bash
# Renders the node's config templates with the values only the node knows: its
# public IPv6 and private IPv4 addresses, which afterburn (coreos-metadata.service)
# reads from the Equinix Metal metadata service and writes to /run/metadata/flatcar.
#
# Every file under the template directory is written to the same path under the
# target root, with the template's mode, each placeholder replaced. Runs at every
# boot (the output is a pure function of templates and metadata).
# Paths come from the environment so tests can run this script on fake files.
set -euo pipefail

metadata=${V6FABRIC_METADATA_ENV:-/run/metadata/flatcar}
templates=${V6FABRIC_TEMPLATE_DIR:-@TEMPLATE_DIR@}
root=${V6FABRIC_TARGET_ROOT:-/}

metadata_value() {
	local value
	value=$(sed -n "s/^$1=//p" "$metadata" | head -n 1)
	value=${value%\"}
	value=${value#\"}
	if [ -z "$value" ]; then
		echo "render-boot-values: $1 is missing from $metadata" >&2
		return 1
	fi
	printf '%s' "$value"
}

if [ ! -r "$metadata" ]; then
	echo "render-boot-values: $metadata is not readable (coreos-metadata.service has not run?)" >&2
	exit 1
fi

node_ipv6=$(metadata_value COREOS_PACKET_IPV6_PUBLIC_0)
node_private_ipv4=$(metadata_value COREOS_PACKET_IPV4_PRIVATE_0)

# The values end up inside YAML and sed expressions: accept only address characters.
if ! [[ $node_ipv6 =~ ^[0-9a-fA-F:]+$ && $node_ipv6 == *:* ]]; then
	echo "render-boot-values: COREOS_PACKET_IPV6_PUBLIC_0='$node_ipv6' is not an IPv6 address" >&2
	exit 1
fi
if ! [[ $node_private_ipv4 =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ ]]; then
	echo "render-boot-values: COREOS_PACKET_IPV4_PRIVATE_0='$node_private_ipv4' is not an IPv4 address" >&2
	exit 1
fi

substitutions() {
	printf 's/%s/%s/g\n' '@NODE_IPV6_PLACEHOLDER@' "$node_ipv6"
	printf 's/%s/%s/g\n' '@NODE_PRIVATE_IPV4_PLACEHOLDER@' "$node_private_ipv4"
}

count=0
while IFS= read -r -d '' template; do
	relative=${template#"$templates"/}
	target=${root%/}/$relative
	mkdir -p "$(dirname "$target")"
	partial=$(mktemp "$target.XXXXXX")
	chmod "$(stat -c %a "$template")" "$partial"
	sed -f <(substitutions) "$template" >"$partial"
	mv -f "$partial" "$target"
	count=$((count + 1))
	echo "render-boot-values: wrote $target"
done < <(find "$templates" -type f -print0 2>/dev/null)

echo "render-boot-values: $count file(s) rendered for node IPv6 $node_ipv6, private IPv4 $node_private_ipv4"
