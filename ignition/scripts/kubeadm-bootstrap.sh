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
# after the after-hook too) and the unit is skipped once kubeadm.done exists. If an
# earlier attempt stopped half way (kubelet.conf or static pod manifests exist but
# no stamp), kubeadm's preflight checks would refuse to run again, so the attempt
# is undone with `kubeadm reset` and the certificate authorities that Ignition
# placed are put back (reset empties /etc/kubernetes/pki).
set -euo pipefail

command=${KUBEADM_COMMAND:?KUBEADM_COMMAND must be init or join}
config=${KUBEADM_CONFIG:-@KUBEADM_CONFIG@}
state=${V6FABRIC_STATE_DIR:-@STATE_DIR@}
kubernetes_dir=${V6FABRIC_KUBERNETES_DIR:-/etc/kubernetes}
kubeadm=${V6FABRIC_KUBEADM:-kubeadm}
hooks=${V6FABRIC_HOOK_DIR:-@HOOK_DIR@}

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
if grep -q '@NODE_IPV6_PLACEHOLDER@\|@NODE_PRIVATE_IPV4_PLACEHOLDER@\|@BOOTSTRAP_TOKEN_PLACEHOLDER@' "$config"; then
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

if [ -e "$kubernetes_dir/kubelet.conf" ] || [ -e "$kubernetes_dir/bootstrap-kubelet.conf" ] ||
	[ -n "$(ls -A "$kubernetes_dir/manifests" 2>/dev/null)" ]; then
	echo "kubeadm-bootstrap: an earlier kubeadm $command stopped half way; resetting before retrying"
	"$kubeadm" reset --force
	rm -rf "$kubernetes_dir/pki"
	if [ -d "$state/pki" ]; then cp -a "$state/pki" "$kubernetes_dir/pki"; fi
fi

run_hook before-kubeadm
echo "kubeadm-bootstrap: kubeadm $command --config $config"
"$kubeadm" "$command" --config "$config"
touch "$state/kubeadm.ok"
run_hook after-kubeadm
touch "$state/kubeadm.done"
echo "kubeadm-bootstrap: kubeadm $command succeeded"
