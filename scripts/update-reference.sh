#!/usr/bin/env bash
# Refreshes reference/ from the workplace's shared folder (the schemas derived from
# upstream sources, the Ignition apply check and Calico's release manifests), then
# records their checksums.
#
#   scripts/update-reference.sh [SHARED_DIR]    (default: ../shared beside the project)
#   scripts/update-reference.sh --check [SHARED_DIR]
#                                               exit 1 if reference/ differs from SHARED_DIR
#
# Where each file comes from upstream, and how it was derived, is in the README next to
# it (reference/schemas/*/README.md). The tests read only reference/, never SHARED_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."

check=0
if [ "${1:-}" = "--check" ]; then check=1; shift; fi
shared=${1:-../shared}
if [ ! -d "$shared/schemas" ] || [ ! -f "$shared/tools/ignition-apply-check.sh" ]; then
  echo "update-reference: $shared has no schemas/ and tools/ignition-apply-check.sh" >&2
  exit 2
fi

# What the tests need, relative to both trees.
items=(schemas/metal schemas/kubeadm schemas/calico tools/ignition-apply-check.sh upstream/calico-v3.32.1)

if [ $check = 1 ]; then
  status=0
  for item in "${items[@]}"; do
    diff -r "$shared/$item" "reference/$item" >/dev/null || { echo "update-reference: reference/$item differs from $shared/$item"; status=1; }
  done
  [ $status = 0 ] && echo "update-reference: reference/ matches $shared"
  exit $status
fi

for item in "${items[@]}"; do
  rm -rf "reference/$item"
  mkdir -p "reference/$(dirname "$item")"
  cp -r "$shared/$item" "reference/$item"
done
chmod -R u+w reference
(cd reference && find schemas tools upstream -type f | LC_ALL=C sort | xargs sha256sum >SHA256SUMS)
echo "update-reference: copied ${items[*]} from $shared; reference/SHA256SUMS updated"
