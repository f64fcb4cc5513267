#!/bin/bash
# Announce the Service ranges from this node only while its kube-proxy works
# (docs/bgp-fabric.md, "When a node announces the Service ranges"): the routers spread
# Service traffic over every node that announces, and a node without working
# kube-proxy rules would drop its share. Calico's BGP daemon withdraws every Service
# route of a node labelled node.kubernetes.io/exclude-from-external-load-balancers=true
# (confd ExcludeServiceAdvertisement) and announces them again when the label goes.
# The kubelet registers the node with the label (kubeadm nodeRegistration), so a new
# node announces nothing until this script, run every 30 s by its timer, has seen
# kube-proxy healthy; a node whose kube-proxy stops answering is labelled again. The
# node's own kubelet credentials may set labels under node.kubernetes.io/ on its own
# Node (NodeRestriction). Until the node has joined there is nothing to do.
#
# `service-announcement withdraw` only sets the label: at every boot before the kubelet
# starts (the kubelet applies --node-labels only when it registers the Node) and at
# shutdown before the kubelet stops (v6fabric-withdraw-at-*.service).
set -euo pipefail

node=${V6FABRIC_NODE_NAME:-@NODE_NAME@}
label=@LABEL@
kubeconfig=${V6FABRIC_KUBECONFIG:-/etc/kubernetes/kubelet.conf}
health=${V6FABRIC_KUBE_PROXY_HEALTHZ:-http://[::1]:10256/healthz}
kubectl_command=${V6FABRIC_KUBECTL_COMMAND:-kubectl}
curl_command=${V6FABRIC_CURL_COMMAND:-curl}

if [ ! -s "$kubeconfig" ]; then
	echo "service-announcement: $kubeconfig does not exist yet (the node has not joined)"
	exit 0
fi
# The node's own credentials; not named kubectl, which would call itself.
as_node() { "$kubectl_command" --kubeconfig "$kubeconfig" --request-timeout=10s "$@"; }
if [ "${1:-}" = withdraw ]; then
	as_node label node "$node" "$label=true" --overwrite
	echo "service-announcement: $node withdraws the Service ranges"
	exit 0
fi
current=$(as_node get node "$node" -o "go-template={{index .metadata.labels \"$label\"}}")
if "$curl_command" --silent --fail --output /dev/null --max-time 5 "$health"; then
	if [ "$current" = true ]; then
		as_node label node "$node" "$label-"
		echo "service-announcement: kube-proxy is healthy; $node announces the Service ranges"
	fi
elif [ "$current" != true ]; then
	as_node label node "$node" "$label=true" --overwrite
	echo "service-announcement: kube-proxy does not answer $health; $node withdraws the Service ranges" >&2
fi
