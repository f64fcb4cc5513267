/**
 * The Service address admission policies as the add-on manifest ships them (issue #23
 * item 6): no Service may set spec.externalIPs, and the Local pool's addresses are for
 * Local Services however they are asked for. These check the rendered documents; the
 * control-plane rehearsal (__tests__/rehearsal-control-plane.test.ts) has the real API
 * server evaluate the CEL and refuse.
 */
import { planAddresses } from "../lib/address-plan";
import { CALICO_ADDON_DIR, calicoAddonManifests, CalicoInput } from "../lib/calico";
import { parseManifest } from "./support/calico-validate";

// The default plan of this /56, written out (docs/address-plan.md): the external range is
// zone 3's first /112, the Local pool its second half's first 4 addresses.
const base: CalicoInput = { plan: planAddresses("2001:db8:0:ab00::/56"), asNumber: 65000, localServiceRoutes: 4 };

function admissionDocs(input: CalicoInput): Record<string, any>[] {
  const manifest = calicoAddonManifests(input).find((m) => m.path === `${CALICO_ADDON_DIR}/25-local-service-admission.yaml`);
  if (!manifest || !("yaml" in manifest)) throw new Error("no admission manifest");
  return parseManifest(manifest.yaml);
}

function named(docs: Record<string, any>[], kind: string, name: string): Record<string, any> {
  const found = docs.find((d) => d.kind === kind && d.metadata.name === name);
  if (!found) throw new Error(`no ${kind} ${name} in the admission manifest`);
  return found;
}

describe("spec.externalIPs is refused for every Service", () => {
  const docs = admissionDocs(base);
  const policy = named(docs, "ValidatingAdmissionPolicy", "v6fabric-service-external-ips");
  const binding = named(docs, "ValidatingAdmissionPolicyBinding", "v6fabric-service-external-ips");

  test("the policy matches creating and updating any Service and fails closed", () => {
    expect(policy.spec.failurePolicy).toBe("Fail");
    expect(policy.spec.matchConstraints).toEqual({ resourceRules: [{ apiGroups: [""], apiVersions: ["v1"], operations: ["CREATE", "UPDATE"], resources: ["services"] }] });
  });

  test("one rule: no externalIPs, with a message that says why and what to use instead", () => {
    expect(policy.spec.validations).toHaveLength(1);
    const [rule] = policy.spec.validations;
    expect(rule.expression).toBe("!has(object.spec.externalIPs) || size(object.spec.externalIPs) == 0");
    expect(rule.reason).toBe("Forbidden");
    expect(rule.message).toMatch(/^spec\.externalIPs is not allowed: /);
    expect(rule.message).toContain("CVE-2020-8554");
    expect(rule.message).toContain("type: LoadBalancer");
  });

  test("bound for everyone, denying: no namespace or user is left out", () => {
    expect(binding.spec).toEqual({ policyName: "v6fabric-service-external-ips", validationActions: ["Deny"] });
  });

  test("shipped whatever LOCAL_SERVICE_ROUTES is, Local pool or not", () => {
    expect(named(admissionDocs({ ...base, localServiceRoutes: 0 }), "ValidatingAdmissionPolicy", "v6fabric-service-external-ips")).toEqual(policy);
  });
});

describe("the Local pool's addresses stay with Local Services", () => {
  const local = named(admissionDocs(base), "ValidatingAdmissionPolicy", "v6fabric-local-service-addresses");
  const variable = (name: string) => local.spec.variables.find((v: any) => v.name === name).expression as string;
  const addresses = `${variable("requested")} ${variable("addresses")}`;

  test("the addresses checked are what Calico is asked for, spec.loadBalancerIP and the status; externalIPs is left to its own policy", () => {
    expect(addresses).toContain("object.metadata.annotations['projectcalico.org/loadBalancerIPs']");
    expect(addresses).toContain("object.spec.loadBalancerIP");
    expect(addresses).toContain("object.status.loadBalancer.ingress");
    expect(addresses).not.toContain("externalIPs");
  });

  test("a Cluster Service may not ask for a Local pool address (its status may still hold one after a switch from Local)", () => {
    const rule = local.spec.validations.find((v: any) => v.message.startsWith("the addresses of the pool"));
    expect(rule.expression).toBe("variables.local || variables.requested.all(a, !isIP(a) || !cidr('2001:db8:0:ab30::8000/126').containsIP(a))");
    expect(variable("addresses")).toMatch(/^variables\.requested \+ /);
    expect(rule.message).toContain("local-services-ipv6 (2001:db8:0:ab30::8000/126) are for externalTrafficPolicy: Local Services only");
  });

  test("without a Local pool there is no such rule", () => {
    const none = named(admissionDocs({ ...base, localServiceRoutes: 0 }), "ValidatingAdmissionPolicy", "v6fabric-local-service-addresses");
    expect(none.spec.validations.map((v: any) => v.message)).not.toContainEqual(expect.stringContaining("the addresses of the pool"));
    expect(none.spec.validations).toHaveLength(3);
  });
});
