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
# - a joining control plane resumes, skipping the phases that are done and would now
#   fail for reasons unrelated to the join: preflight (it refuses the files the first
#   attempt left), kubelet-start once the kubelet has its own kubelet.conf (it refuses
#   when a Ready Node of this name exists, which Calico makes true a minute after TLS
#   bootstrap), and check-etcd once kubeadm wrote the etcd manifest (kubeadm writes it
#   only after adding the member; the check fails while any member is unhealthy).
#   kubeadm 1.36's code for each: docs/control-plane.md. Nothing is reset, and a failed
#   resume is simply retried: there is no count.
# - the node's own etcd member is removed only when it cannot rejoin: etcd lists a
#   started member with this node's name and peer URL while this node's etcd data is
#   gone. The removal goes through another member (etcd refuses one that would cost
#   quorum); if none does it, exit 3 (which the unit does not restart) with the commands.
# - the first control plane resets only when etcd lists no other member: others may
#   have joined with the certificates Ignition gave them, and a reset would wipe the
#   data they replicate. If someone else is a member it stops (exit 3) with the commands
#   to finish the init by hand; if etcd does not answer it retries without a reset.
# - workers hold no etcd member: `kubeadm reset`, then a fresh attempt.
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
}

# The value of --NAME= in the etcd static pod manifest kubeadm wrote.
# Empty when kubeadm has written no etcd manifest.
etcd_flag() {
	[ -f "$kubernetes_dir/manifests/etcd.yaml" ] || return 0
	sed -n "s/^ *- --$1=//p" "$kubernetes_dir/manifests/etcd.yaml" | head -n 1
}

# POSTs to etcd's JSON gateway at the first client URL that answers (later arguments),
# as kubeadm's apiserver-etcd-client. Prints the reply; fails when none answers.
etcd_api() {
	local call=$1 body=$2 endpoint pki=$kubernetes_dir/pki
	shift 2
	for endpoint in "$@"; do
		if "$curl" -sS --fail --max-time 10 --cacert "$pki/etcd/ca.crt" --cert "$pki/apiserver-etcd-client.crt" --key "$pki/apiserver-etcd-client.key" \
			-X POST -d "$body" "$endpoint/v3/cluster/member/$call"; then
			return 0
		fi
	done
	return 1
}

own_peer=$(etcd_flag initial-advertise-peer-urls)
own_name=$(etcd_flag name)
# Client URLs of the other members the manifest names (peer port 2380, client 2379).
other_members() {
	etcd_flag initial-cluster | tr ',' '\n' | sed 's/^[^=]*=//' | { grep -vxF "$own_peer" || true; } | sed 's/:2380$/:2379/'
}

half_way=false
if [ -e "$kubernetes_dir/kubelet.conf" ] || [ -e "$kubernetes_dir/bootstrap-kubelet.conf" ] ||
	[ -n "$(ls -A "$kubernetes_dir/manifests" 2>/dev/null)" ] || [ -n "$(ls -A "$etcd_data" 2>/dev/null)" ]; then
	half_way=true
fi
control_plane_join=false
if [ "$command" = join ] && grep -q '^controlPlane:' "$config"; then control_plane_join=true; fi

mapfile -t others < <(other_members)

# What etcd says of this node's member when its data is gone: "started ID" (listed
# with this node's name and peer URL: it ran once, and cannot rejoin without its data),
# "added" (listed by peer URL only, never started: kubeadm starts it afresh) or
# "absent" (kubeadm adds it). Fails when no other member answers.
lost_member_state() {
	local list id
	list=$(etcd_api list '{}' "${others[@]}") || return 1
	id=$(jq -r --arg peer "$own_peer" --arg name "$own_name" '.members[]? | select(.name == $name and ((.peerURLs // []) | index($peer))) | .ID' <<<"$list")
	if [ -n "$id" ]; then
		echo "started $id"
	elif jq -e --arg peer "$own_peer" 'any(.members[]?; (.peerURLs // []) | index($peer))' <<<"$list" >/dev/null; then
		echo added
	else
		echo absent
	fi
}

# Removes that started member through another member (etcd refuses a removal that
# would cost quorum); exits 3 if none does.
remove_lost_member() {
	echo "kubeadm-bootstrap: etcd member $1 ($own_name, $own_peer) ran before but its data is gone: removing it for a fresh join"
	if etcd_api remove "{\"ID\":\"$1\"}" "${others[@]}" >/dev/null; then
		echo "kubeadm-bootstrap: removed this node's etcd member $1"
		return 0
	fi
	echo "kubeadm-bootstrap: giving up: no other etcd member removed member $1 ($own_peer), so nothing here is reset." >&2
	echo "kubeadm-bootstrap: on a healthy control plane: etcdctl member remove <ID> (hex of $1); then here: kubeadm reset --force; systemctl restart v6fabric-kubeadm.service" >&2
	exit "$gave_up"
}

# The first control plane after a failed init: reset only when etcd lists no one else.
check_init_members() {
	local list others_listed endpoints
	read -r -a endpoints <<<"$(etcd_flag advertise-client-urls | tr ',' ' ')"
	if ! list=$(etcd_api list '{}' "${endpoints[@]}"); then
		echo "kubeadm-bootstrap: not resetting: this node's etcd does not answer, so who joined is unknown; retrying later" >&2
		exit 1
	fi
	others_listed=$(jq -r --arg peer "$own_peer" '.members[]? | select((.peerURLs // []) | index($peer) | not) | "kubeadm-bootstrap:   \(.name // "") \(.peerURLs // [] | join(","))"' <<<"$list")
	[ -n "$others_listed" ] || return 0
	echo "kubeadm-bootstrap: not resetting: kubeadm init stopped half way, but etcd already has other members, whose data a reset would wipe:" >&2
	echo "$others_listed" >&2
	echo "kubeadm-bootstrap: finish the init here instead: kubeadm init --config $config --skip-phases=preflight,certs,kubeconfig,etcd,control-plane; touch $state/kubeadm.ok; systemctl restart v6fabric-kubeadm.service" >&2
	exit "$gave_up"
}

extra=()
if $half_way && $control_plane_join; then
	skip=preflight
	if [ -s "$kubernetes_dir/kubelet.conf" ]; then skip+=,kubelet-start; fi
	if [ -n "$own_peer" ] && [ -d "$etcd_data/member" ]; then
		skip+=,check-etcd
	elif [ -n "$own_peer" ]; then
		if ! member=$(lost_member_state); then
			echo "kubeadm-bootstrap: this node's etcd data is gone and no other etcd member answers; retrying later" >&2
			exit 1
		fi
		case $member in
		started*)
			remove_lost_member "${member#started }"
			reset_node
			skip=
			;;
		added) skip+=,check-etcd ;;
		esac
	fi
	if [ -n "$skip" ]; then
		echo "kubeadm-bootstrap: an earlier kubeadm join stopped half way; resuming it without a reset, skipping the phases that are done: $skip"
		extra=("--skip-phases=$skip")
	fi
elif $half_way; then
	if [ "$command" = init ] && [ -d "$etcd_data/member" ]; then check_init_members; fi
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
