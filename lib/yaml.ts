/**
 * The one way this project writes YAML for Kubernetes, kubeadm and Calico readers.
 *
 * kubeadm reads YAML 1.1 (go-yaml v2), where `on`, `0644` or `10:30` are not strings,
 * so documents are written as YAML 1.1. Every string holding ":" (IPv6 addresses and
 * prefixes, URLs), a boot placeholder (an IPv6 address once the node substitutes it) or
 * a Terraform reference is double-quoted: a reader must never see a number, a
 * sexagesimal or a mapping key there, and a bootstrap token of digits only would be a
 * float to YAML 1.1. A text of several lines (a Corefile) is a literal block (`|`),
 * which keeps every character as it is. Lines are never folded, so a cdktf token stays
 * on one line.
 */
import YAML from "yaml";
import { BOOT_VALUES } from "./boot-values";

function needsQuotes(text: string): boolean {
  return text.includes(":") || text.includes("${") || Object.values(BOOT_VALUES).some((placeholder) => text.includes(placeholder));
}

/** One YAML 1.1 document. */
export function toYaml(value: object): string {
  const doc = new YAML.Document(value, { version: "1.1" });
  YAML.visit(doc, {
    Scalar(_key, node) {
      if (typeof node.value !== "string") return;
      if (node.value.includes("\n") && !node.value.includes("${")) node.type = "BLOCK_LITERAL";
      else if (needsQuotes(node.value)) node.type = "QUOTE_DOUBLE";
    },
  });
  return doc.toString({ lineWidth: 0 });
}

/** Several documents in one file, separated by `---`. */
export function toYamlDocuments(documents: readonly object[]): string {
  return documents.map((d) => toYaml(d)).join("---\n");
}
