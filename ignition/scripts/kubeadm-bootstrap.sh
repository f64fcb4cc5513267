#!/bin/bash
# Runs `kubeadm init` or `kubeadm join` once, with the config rendered at boot by
# render-boot-values. systemd retries this unit until it succeeds: a joining node
# may boot long before the control plane answers (kubeadm's own discovery also
# retries for timeouts.discovery, 5 minutes by default).
#
# Optional hooks (executables written by Ignition when the renderer is given them)
# run right before kubeadm and right after it succeeded, e.g. to put the API
# Service address on lo (docs/control-plane.md).
#
# Idempotent: stamp files mark success (kubeadm.ok after kubeadm, kubeadm.done
# after the after-hook too) and the unit is skipped once kubeadm.done exists.
#
# An earlier attempt that stopped half way (kubelet.conf, static pod manifests or
# etcd data exist but no stamp) is handled by role (docs/control-plane.md, "Retries"):
# - a joining control plane resumes: kubeadm's join phases can run again (the etcd
#   phase finds its member by peer URL and does not add it twice; certificates and
#   kubeconfigs that match are kept), so the retry skips only preflight, which would
#   refuse the files the first attempt left. Nothing is reset, so an etcd member that
#   was added or has started is never wiped behind the cluster's back.
# - after V6FABRIC_MAX_RESUMES resumes that still fail, the node's own etcd member is
#   removed through the other members first (etcd refuses a removal that would cost
#   quorum), and only then is the node reset for a fresh join. If the removal cannot
#   be done, the script stops for good (exit 3, which the unit does not restart) with
#   a message that says what to do.
# - the first control plane and workers hold no etcd member that others count on:
#   `kubeadm reset`, then a fresh attempt.
# After a reset the certificate authorities that Ignition placed are put back (reset
# empties /etc/kubernetes/pki).
set -euo pipefail

command=${KUBEADM_COMMAND:?KUBEADM_COMMAND must be init or join}
config=${KUBEADM_CONFIG:-@KUBEADM_CONFIG@}
state=${V6FABRIC_STATE_DIR:-@STATE_DIR@}
kubernetes_dir=${V6FABRIC_KUBERNETES_DIR:-/etc/kubernetes}
kubeadm=${V6FABRIC_KUBEADM:-kubeadm}
hooks=${V6FABRIC_HOOK_DIR:-@HOOK_DIR@}
etcd_data=${V6FABRIC_ETCD_DATA_DIR:-/var/lib/etcd}
curl=${V6FABRIC_CURL:-curl}
max_resumes=${V6FABRIC_MAX_RESUMES:-5}
gave_up=3

case $command in
init | join) ;;
*)
	echo "kubeadm-bootstrap: KUBEADM_COMMAND=$command is not valid: use init or join" >&2
	exit 2
	;;
esac

if [ -e "$state/kubeadm.done" ]; then
	echo "kubeadm-bootstrap: $state/kubeadm.done exists; this node already ran kubeadm $command"
	exit 0
fi
if [ ! -s "$config" ]; then
	echo "kubeadm-bootstrap: $config is missing (has v6fabric-boot-values.service run?)" >&2
	exit 1
fi
if grep -q '@NODE_IPV6_PLACEHOLDER@\|@NODE_PRIVATE_IPV4_PLACEHOLDER@' "$config"; then
	echo "kubeadm-bootstrap: $config still holds boot placeholders" >&2
	exit 1
fi

run_hook() {
	if [ -x "$hooks/$1" ]; then
		echo "kubeadm-bootstrap: running hook $hooks/$1"
		"$hooks/$1"
	fi
}

mkdir -p "$state"
if [ -e "$state/kubeadm.ok" ]; then
	# kubeadm succeeded on an earlier attempt; only the after-hook is left.
	run_hook after-kubeadm
	touch "$state/kubeadm.done"
	exit 0
fi

# Keep the certificate authorities Ignition placed, so a reset can restore them.
if [ ! -e "$state/pki.saved" ]; then
	rm -rf "$state/pki"
	if [ -d "$kubernetes_dir/pki" ]; then cp -a "$kubernetes_dir/pki" "$state/pki"; fi
	touch "$state/pki.saved"
fi

reset_node() {
	"$kubeadm" reset --force
	rm -rf "$kubernetes_dir/pki"
	if [ -d "$state/pki" ]; then cp -a "$state/pki" "$kubernetes_dir/pki"; fi
	rm -f "$state/kubeadm.resumes"
}

# The value of --NAME= in the etcd static pod manifest kubeadm wrote.
etcd_flag() {
	sed -n "s/^ *- --$1=//p" "$kubernetes_dir/manifests/etcd.yaml" 2>/dev/null | head -n 1
}

# Removes this node's etcd member through another member's client URL. Succeeds when
# the member is gone (or was never added); fails when no other member answers.
remove_own_etcd_member() {
	local own endpoint list id pki=$kubernetes_dir/pki
	local tls=(--cacert "$pki/etcd/ca.crt" --cert "$pki/apiserver-etcd-client.crt" --key "$pki/apiserver-etcd-client.key")
	own=$(etcd_flag initial-advertise-peer-urls)
	if [ -z "$own" ]; then
		echo "kubeadm-bootstrap: $kubernetes_dir/manifests/etcd.yaml names no peer URL of this node" >&2
		return 1
	fi
	for endpoint in $(etcd_flag initial-cluster | tr ',' '\n' | sed 's/^[^=]*=//' | grep -vxF "$own" | sed 's/:2380$/:2379/'); do
		list=$("$curl" -sS --fail --max-time 10 "${tls[@]}" -X POST -d '{}' "$endpoint/v3/cluster/member/list") || continue
		id=$(jq -r --arg own "$own" '.members[]? | select((.peerURLs // []) | index($own)) | .ID' <<<"$list")
		if [ -z "$id" ]; then
			echo "kubeadm-bootstrap: etcd at $endpoint lists no member with peer URL $own"
			return 0
		fi
		if "$curl" -sS --fail --max-time 30 "${tls[@]}" -X POST -d "{\"ID\":\"$id\"}" "$endpoint/v3/cluster/member/remove" >/dev/null; then
			echo "kubeadm-bootstrap: removed this node's etcd member $id ($own) through $endpoint"
			return 0
		fi
		echo "kubeadm-bootstrap: etcd at $endpoint refused to remove member $id ($own)" >&2
	done
	return 1
}

half_way=false
if [ -e "$kubernetes_dir/kubelet.conf" ] || [ -e "$kubernetes_dir/bootstrap-kubelet.conf" ] ||
	[ -n "$(ls -A "$kubernetes_dir/manifests" 2>/dev/null)" ] || [ -n "$(ls -A "$etcd_data" 2>/dev/null)" ]; then
	half_way=true
fi
control_plane_join=false
if [ "$command" = join ] && grep -q '^controlPlane:' "$config"; then control_plane_join=true; fi

extra=()
if $half_way && $control_plane_join; then
	resumes=$(cat "$state/kubeadm.resumes" 2>/dev/null || echo 0)
	if [ "$resumes" -lt "$max_resumes" ]; then
		echo "$((resumes + 1))" >"$state/kubeadm.resumes"
		echo "kubeadm-bootstrap: an earlier kubeadm join stopped half way; resuming it (attempt $((resumes + 1)) of $max_resumes; no reset: this node may hold an etcd member)"
		extra=(--skip-phases=preflight)
	else
		echo "kubeadm-bootstrap: $max_resumes resumed joins failed; removing this node's etcd member through the other members before a fresh join"
		if ! remove_own_etcd_member; then
			echo "kubeadm-bootstrap: giving up: this node's etcd member could not be removed through any other member, so its data is left alone." >&2
			echo "kubeadm-bootstrap: on a healthy control plane, find it (etcdctl member list: peer URL $(etcd_flag initial-advertise-peer-urls)) and remove it (etcdctl member remove <ID>), then here: kubeadm reset --force; rm -f $state/kubeadm.resumes; systemctl restart v6fabric-kubeadm.service" >&2
			exit "$gave_up"
		fi
		reset_node
	fi
elif $half_way; then
	echo "kubeadm-bootstrap: an earlier kubeadm $command stopped half way; resetting before retrying"
	reset_node
fi

run_hook before-kubeadm
echo "kubeadm-bootstrap: kubeadm $command --config $config${extra[*]:+ ${extra[*]}}"
"$kubeadm" "$command" --config "$config" "${extra[@]}"
touch "$state/kubeadm.ok"
run_hook after-kubeadm
touch "$state/kubeadm.done"
echo "kubeadm-bootstrap: kubeadm $command succeeded"
