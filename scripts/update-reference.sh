#!/usr/bin/env bash
# Refreshes reference/ (pinned copies of the schemas derived from upstream sources, the
# Ignition apply check and Calico's release manifests) from a folder laid out the same
# way, then records their checksums.
#
#   scripts/update-reference.sh SOURCE_DIR
#   scripts/update-reference.sh --check SOURCE_DIR
#                                               exit 1 if reference/ differs from SOURCE_DIR
#
# Where each file comes from upstream, and how it was derived, is in the README next to
# it (reference/schemas/*/README.md). The tests read only reference/, never SOURCE_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."

check=0
if [ "${1:-}" = "--check" ]; then check=1; shift; fi
if [ $# -ne 1 ]; then
  echo "usage: scripts/update-reference.sh [--check] SOURCE_DIR (a folder with schemas/, tools/ and upstream/ laid out like reference/)" >&2
  exit 2
fi
from=$1
if [ ! -d "$from/schemas" ] || [ ! -f "$from/tools/ignition-apply-check.sh" ]; then
  echo "update-reference: $from has no schemas/ and tools/ignition-apply-check.sh" >&2
  exit 2
fi

# What the tests need, relative to both trees.
items=(schemas/metal schemas/kubeadm schemas/calico tools/ignition-apply-check.sh upstream/calico-v3.32.1)

if [ $check = 1 ]; then
  status=0
  for item in "${items[@]}"; do
    diff -r "$from/$item" "reference/$item" >/dev/null || { echo "update-reference: reference/$item differs from $from/$item"; status=1; }
  done
  [ $status = 0 ] && echo "update-reference: reference/ matches $from"
  exit $status
fi

for item in "${items[@]}"; do
  rm -rf "reference/$item"
  mkdir -p "reference/$(dirname "$item")"
  cp -r "$from/$item" "reference/$item"
done
chmod -R u+w reference
(cd reference && find schemas tools upstream -type f | LC_ALL=C sort | xargs sha256sum >SHA256SUMS)
echo "update-reference: copied ${items[*]} from $from; reference/SHA256SUMS updated"
