#!/bin/bash
# NAT64 for this node's pods (docs/nat64.md), run by v6fabric-nat64.service before
# every start of tayga. Unpacks tayga from the Debian package Ignition downloaded and
# checked against its pinned hash (lib/versions.ts), creates tayga's TUN device,
# routes the NAT64 prefix and tayga's IPv4 pool to it, turns on IPv4 forwarding (the
# ruleset forwards IPv4 for the translator only) and loads the nftables ruleset.
# Every step can run again.
set -euo pipefail

deb=${V6FABRIC_TAYGA_DEB:-@TAYGA_DEB@}
tayga=${V6FABRIC_TAYGA:-@TAYGA_BIN@}
config=${V6FABRIC_TAYGA_CONFIG:-@TAYGA_CONFIG@}
rules=${V6FABRIC_NAT64_RULES:-@NAT64_RULES@}
data_dir=${V6FABRIC_TAYGA_DATA_DIR:-@DATA_DIR@}
device=@DEVICE@

# A .deb is an ar archive: an 8-byte magic, then members with 60-byte headers (name
# in bytes 0-15, size in 48-57), each padded to an even size. Flatcar has no ar, so
# walk the headers with coreutils and unpack the binary from data.tar.xz with tar/xz.
# `head | tail` rather than `tail | head`: the reader takes all its writer sends, so no
# pipe ends early (SIGPIPE under pipefail).
if [ ! -x "$tayga" ]; then
	size=$(stat -c %s "$deb")
	offset=8
	mkdir -p "$(dirname "$tayga")"
	while [ "$offset" -lt "$size" ]; do
		header=$(head -c $((offset + 60)) "$deb" | tail -c 60)
		name=${header:0:16}
		name=${name%% *}
		length=${header:48:10}
		length=${length// /}
		offset=$((offset + 60))
		if [ "${name%/}" = data.tar.xz ]; then
			head -c $((offset + length)) "$deb" | tail -c "$length" >"$tayga.tar.xz"
			tar -xJOf "$tayga.tar.xz" ./usr/sbin/tayga >"$tayga.new"
			rm -f "$tayga.tar.xz"
			chmod 0755 "$tayga.new"
			mv "$tayga.new" "$tayga"
			break
		fi
		offset=$((offset + length + length % 2))
	done
	if [ ! -x "$tayga" ]; then
		echo "nat64: no data.tar.xz with ./usr/sbin/tayga in $deb" >&2
		exit 1
	fi
	echo "nat64: unpacked $tayga from $deb"
fi

mkdir -p "$data_dir"
ip link show "$device" >/dev/null 2>&1 || "$tayga" --config "$config" --mktun
ip link set "$device" up
ip -6 route replace @PREFIX@ dev "$device"
ip -4 route replace @POOL@ dev "$device"
sysctl -qw net.ipv4.ip_forward=1
nft -f "$rules"
echo "nat64: @PREFIX@ and @POOL@ routed to $device; nftables rules loaded from $rules"
