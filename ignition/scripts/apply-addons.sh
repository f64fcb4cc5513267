#!/bin/bash
# Init node only: applies the cluster add-on manifests listed (one path a line, in
# order) in the add-on list, with server-side apply, once `kubeadm init` has
# written admin.conf. Objects fail until their kinds are served (a CRD applied by
# the previous manifest takes a moment to be established; the operator adds its
# admission policies at start-up), so each manifest is retried for a bounded time; if that runs out, systemd restarts the
# unit and the whole list is applied again (server-side apply is idempotent).
# --force-conflicts: these objects are declared here; when a controller created a
# default first (kube-controllers writes its `default` configuration at start-up),
# our values win instead of the apply failing on the conflict forever.
#
# Server-side apply also takes Calico's objects whole: the v3.32.1 CRDs declare no
# list of objects as a set (their Service IP lists are atomic), so no manifest needs
# a client-side fallback; the first is 2.9 MB of CRDs, too large for the
# last-applied annotation client-side apply would write.
set -euo pipefail

list=${ADDON_LIST:-@ADDON_LIST@}
state=${V6FABRIC_STATE_DIR:-@STATE_DIR@}
kubeconfig=${V6FABRIC_KUBECONFIG:-/etc/kubernetes/admin.conf}
attempts=${V6FABRIC_APPLY_ATTEMPTS:-60}
delay=${V6FABRIC_APPLY_DELAY:-10}
kubectl=${V6FABRIC_KUBECTL:-kubectl}

if [ -e "$state/addons.done" ]; then
	echo "apply-addons: $state/addons.done exists; add-ons were applied"
	exit 0
fi
if [ ! -e "$kubeconfig" ]; then
	echo "apply-addons: $kubeconfig does not exist yet (kubeadm init has not finished)" >&2
	exit 1
fi

apply_manifest() {
	"$kubectl" --kubeconfig "$kubeconfig" apply --server-side --force-conflicts --field-manager=v6fabric-addons -f "$1"
}

while IFS= read -r manifest || [ -n "$manifest" ]; do
	[ -n "$manifest" ] || continue
	attempt=1
	until apply_manifest "$manifest"; do
		if [ "$attempt" -ge "$attempts" ]; then
			echo "apply-addons: $manifest still fails after $attempts attempts" >&2
			exit 1
		fi
		echo "apply-addons: $manifest: attempt $attempt failed; retrying in ${delay}s"
		attempt=$((attempt + 1))
		sleep "$delay"
	done
	echo "apply-addons: applied $manifest"
done <"$list"

mkdir -p "$state"
touch "$state/addons.done"
echo "apply-addons: all add-ons applied"
