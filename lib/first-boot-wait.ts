/**
 * The wait that lets one `cdktf deploy '*'` create a cluster and converge its
 * configuration stack: the cluster stack's last step polls the API server until every
 * object the configuration stack keeps exists, since that stack's plan needs Calico's
 * kinds served and imports what first boot made (docs/operations.md, "Order").
 *
 * Pure: typed input to the script's text and the objects' API paths.
 */
import { KubernetesObject } from "./cluster-config";

/** What the script reads from its environment (Terraform's local-exec sets them). */
export const FIRST_BOOT_WAIT_ENV = {
  apiUrl: "V6FABRIC_API_URL",
  caPem: "V6FABRIC_CA_PEM",
  clientCertPem: "V6FABRIC_CLIENT_CERT_PEM",
  clientKeyPem: "V6FABRIC_CLIENT_KEY_PEM",
  waitSeconds: "V6FABRIC_WAIT_SECONDS",
} as const;

/**
 * Exit codes, documented because Terraform suppresses a local-exec's output whenever
 * its environment holds a sensitive value (here the admin key).
 */
export const FIRST_BOOT_WAIT_EXIT = {
  noCurl: 2,
  apiUnreachable: 3,
  objectMissing: 4,
} as const;

/** Seconds between two rounds of requests. */
const POLL_SECONDS = 10;

/**
 * The resource name Kubernetes derives from a kind when a CRD declares no other:
 * lower case, `y` -> `ies`, `s` -> `ses`, else `s` (apimachinery's
 * UnsafeGuessKindToResource). Every kind the configuration stack keeps, Calico's
 * included, uses it; the rehearsal checks each path against a real API server.
 */
export function guessResource(kind: string): string {
  const lower = kind.toLowerCase();
  if (lower.endsWith("s")) return `${lower}es`;
  if (lower.endsWith("y")) return `${lower.slice(0, -1)}ies`;
  return `${lower}s`;
}

/** The object's path on the API server: `/api/v1/...` for the core group, `/apis/<group>/<version>/...` otherwise. */
export function objectApiPath(object: KubernetesObject): string {
  const base = object.apiVersion.includes("/") ? `/apis/${object.apiVersion}` : `/api/${object.apiVersion}`;
  const namespace = object.metadata.namespace ? `/namespaces/${object.metadata.namespace}` : "";
  return `${base}${namespace}/${guessResource(object.kind)}/${object.metadata.name}`;
}

/**
 * A POSIX sh script that exits 0 once every path answers 200, or with
 * FIRST_BOOT_WAIT_EXIT after its deadline. It writes the credentials to a private
 * temporary folder it removes, and never prints them.
 */
export function firstBootWaitScript(paths: readonly string[]): string {
  const e = FIRST_BOOT_WAIT_ENV;
  const x = FIRST_BOOT_WAIT_EXIT;
  return [
    "set -eu",
    `command -v curl >/dev/null || { echo "v6fabric: the first-boot wait needs curl on the runner" >&2; exit ${x.noCurl}; }`,
    'dir=$(mktemp -d); trap \'rm -rf "$dir"\' EXIT',
    `umask 077; printf '%s\\n' "$${e.caPem}" >"$dir/ca"; printf '%s\\n' "$${e.clientCertPem}" >"$dir/cert"; printf '%s\\n' "$${e.clientKeyPem}" >"$dir/key"`,
    `deadline=$(( $(date +%s) + $${e.waitSeconds} ))`,
    `get() { curl -fsS -o /dev/null --max-time 10 --cacert "$dir/ca" --cert "$dir/cert" --key "$dir/key" "$${e.apiUrl}$1" 2>/dev/null; }`,
    "while :; do",
    "  missing=",
    `  for p in ${paths.map((p) => `'${p}'`).join(" ")}; do get "$p" || { missing=$p; break; }; done`,
    '  [ -z "$missing" ] && exit 0',
    '  if [ "$(date +%s)" -ge "$deadline" ]; then',
    `    if get /version; then echo "v6fabric: first boot's add-ons are not all applied yet: $missing is missing" >&2; exit ${x.objectMissing}; fi`,
    `    echo "v6fabric: the API server at $${e.apiUrl} did not answer" >&2; exit ${x.apiUnreachable}`,
    "  fi",
    `  sleep ${POLL_SECONDS}`,
    "done",
    "",
  ].join("\n");
}
