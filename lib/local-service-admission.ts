/**
 * The admission side of the prefix budget: a ValidatingAdmissionPolicy (built into the
 * API server, GA since Kubernetes 1.30) that keeps externalTrafficPolicy: Local
 * addresses inside the Local pool (lib/address-plan.ts loadBalancerPools).
 *
 * The export filter (lib/calico.ts bgpFilter) is what caps each node's announcements:
 * it passes no /128 of the external range outside the Local pool. This policy makes the
 * cap visible where users act: a Service that would need a /128 the filter drops is
 * refused with a message that says what to do, instead of getting an address that no
 * router learns. It binds everyone, Calico's controllers included (their status writes
 * go through it too), so an address from the wrong pool is never published.
 *
 * Pure: typed objects in, documents out; no cdktf import. The CEL uses Kubernetes' IP and
 * CIDR library (`cidr()`, `containsIP`), available in the CEL environment since 1.31.
 */
import { AddressPlan, Ipv6Cidr } from "./address-plan";

/** Calico LoadBalancer IPAM reads the pools a Service asks for from this annotation. */
export const IPV6_POOLS_ANNOTATION = "projectcalico.org/ipv6pools";

/**
 * Calico LoadBalancer IPAM assigns the addresses a Service names in this annotation (a
 * JSON list), from any pool that allows LoadBalancer use, Manual ones included
 * (kube-controllers' loadbalancer controller, Calico 3.32). It ignores
 * `spec.loadBalancerIP`.
 */
export const LOAD_BALANCER_IPS_ANNOTATION = "projectcalico.org/loadBalancerIPs";

export const LOCAL_SERVICE_POLICY_NAME = "v6fabric-local-service-addresses";

/** The policy that refuses `spec.externalIPs` on every Service (serviceExternalIpsAdmission). */
export const SERVICE_EXTERNAL_IPS_POLICY_NAME = "v6fabric-service-external-ips";

export interface LocalServiceAdmissionInput {
  readonly plan: AddressPlan;
  /** The Local pool's CIDR; undefined when LOCAL_SERVICE_ROUTES=0 (no Local address at all). */
  readonly localPool?: Ipv6Cidr;
  /** The Local pool's name, as Services write it in IPV6_POOLS_ANNOTATION. */
  readonly localPoolName: string;
  /** LOCAL_SERVICE_ROUTES, named in the messages. */
  readonly localServiceRoutes: number;
}

/** The annotation value that asks for the Local pool, exactly as users write it. */
export function localPoolAnnotationValue(localPoolName: string): string {
  return JSON.stringify([localPoolName]);
}

const cel = (text: string) => `'${text.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;

/**
 * The policy and its binding. Four rules, each with its own message:
 * 1. a Local LoadBalancer Service asks for the Local pool (Calico assigns from it only on
 *    request: it is a Manual pool);
 * 2. a Cluster Service does not (it would use up the Local budget for nothing);
 * 3. every address of a Local Service that lies in the external range lies in the Local
 *    pool: the addresses it asks Calico for (LOAD_BALANCER_IPS_ANNOTATION),
 *    spec.loadBalancerIP (ignored by Calico, checked so that no other controller can act
 *    on it) and the addresses in its status;
 * 4. a Cluster Service asks for no address of the Local pool by name (it would take it
 *    from the Local budget just as naming the pool would).
 * spec.externalIPs is refused for every Service by serviceExternalIpsAdmission.
 */
export function localServiceAdmission(input: LocalServiceAdmissionInput): object[] {
  const { plan, localPool, localPoolName, localServiceRoutes } = input;
  const external = plan.externalCidr.toString();
  const annotation = localPoolAnnotationValue(localPoolName);
  const variables = [
    { name: "local", expression: "object.spec.externalTrafficPolicy == 'Local'" },
    {
      name: "pools",
      expression: `has(object.metadata.annotations) && ${cel(IPV6_POOLS_ANNOTATION)} in object.metadata.annotations ? object.metadata.annotations[${cel(IPV6_POOLS_ANNOTATION)}].replace(' ', '') : ''`,
    },
    {
      // The addresses the Service asks Calico for by name. The annotation is a JSON list
      // of strings; CEL here has no JSON decoding, so its brackets, quotes and spaces are
      // dropped and the rest split at commas (anything not an address is ignored below,
      // and Calico refuses a malformed annotation itself).
      name: "requested",
      expression:
        `has(object.metadata.annotations) && ${cel(LOAD_BALANCER_IPS_ANNOTATION)} in object.metadata.annotations ? ` +
        `object.metadata.annotations[${cel(LOAD_BALANCER_IPS_ANNOTATION)}].replace('[', '').replace(']', '').replace('"', '').replace(' ', '').split(',') : []`,
    },
    {
      // Every address the Service asks for, claims or was given.
      name: "addresses",
      expression:
        "variables.requested + " +
        "(has(object.spec.loadBalancerIP) ? [object.spec.loadBalancerIP] : []) + " +
        "(has(object.status) && has(object.status.loadBalancer) && has(object.status.loadBalancer.ingress) ? object.status.loadBalancer.ingress.filter(i, has(i.ip)).map(i, i.ip) : [])",
    },
  ];
  // An address outside the external range is not announced by Calico, so it costs nothing.
  const allowed = `!isIP(a) || !cidr(${cel(external)}).containsIP(a)${localPool ? ` || cidr(${cel(localPool.toString())}).containsIP(a)` : ""}`;
  const where = `LOCAL_SERVICE_ROUTES=${localServiceRoutes}, docs/bgp-fabric.md`;
  const validations = [
    {
      expression:
        "!(variables.local && object.spec.type == 'LoadBalancer' && !has(object.spec.loadBalancerClass)) || " +
        (localPool ? `variables.pools == ${cel(annotation)}` : "false"),
      message: localPool
        ? `a LoadBalancer Service with externalTrafficPolicy: Local takes its address from the Local pool: annotate it ${IPV6_POOLS_ANNOTATION}: '${annotation}' (${where})`
        : `externalTrafficPolicy: Local is off for LoadBalancer Services: no node may announce a Local address (${where})`,
      reason: "Forbidden",
    },
    {
      expression: `variables.local || !variables.pools.contains(${cel(JSON.stringify(localPoolName))})`,
      message: `the pool ${localPoolName} is for externalTrafficPolicy: Local Services only (${where})`,
      reason: "Forbidden",
    },
    {
      expression: `!variables.local || variables.addresses.all(a, ${allowed})`,
      message: localPool
        ? `an externalTrafficPolicy: Local Service may use addresses of the external range ${external} only from the Local pool ${localPool} (${where})`
        : `an externalTrafficPolicy: Local Service may not use addresses of the external range ${external} (${where})`,
      reason: "Forbidden",
    },
    ...(localPool
      ? [
          {
            // Only what it asks for: a Local Service turned into a Cluster one keeps its
            // Local address in the status until Calico releases it (not from a Manual pool
            // without the annotation), and that change must go through.
            expression: `variables.local || variables.requested.all(a, !isIP(a) || !cidr(${cel(localPool.toString())}).containsIP(a))`,
            message: `the addresses of the pool ${localPoolName} (${localPool}) are for externalTrafficPolicy: Local Services only (${where})`,
            reason: "Forbidden",
          },
        ]
      : []),
  ];
  return denyingPolicy(LOCAL_SERVICE_POLICY_NAME, ["services", "services/status"], validations, variables);
}

/**
 * Refuses every Service that sets `spec.externalIPs`, for everyone (docs/security.md
 * "Service addresses"). kube-proxy sends traffic for an external IP to that Service on
 * every node, whoever owns the address (CVE-2020-8554), and Calico announces a Local
 * Service's external IPs as /128s: a Service could take another tenant's address, a
 * Local-pool address included, without IPAM knowing. Only Calico's IPAM hands out
 * LoadBalancer addresses. A policy rather than the API server's DenyServiceExternalIPs
 * plugin: the message says why in this project's words, and it reaches a running
 * cluster with the add-ons rather than with the API server's flags.
 */
export function serviceExternalIpsAdmission(): object[] {
  // The status subresource cannot change spec, so only the Service itself.
  return denyingPolicy(SERVICE_EXTERNAL_IPS_POLICY_NAME, ["services"], [
    {
      expression: "!has(object.spec.externalIPs) || size(object.spec.externalIPs) == 0",
      message:
        "spec.externalIPs is not allowed: kube-proxy would take traffic for those addresses to this Service on every node, whoever owns them (CVE-2020-8554), " +
        "and Calico would announce them for a Local Service; use type: LoadBalancer, whose address Calico's IPAM assigns (docs/security.md)",
      reason: "Forbidden",
    },
  ]);
}

/** A ValidatingAdmissionPolicy on Services (create and update of `resources`) and its binding that denies what it refuses, for everyone. */
function denyingPolicy(name: string, resources: readonly string[], validations: readonly object[], variables?: readonly object[]): object[] {
  return [
    {
      apiVersion: "admissionregistration.k8s.io/v1",
      kind: "ValidatingAdmissionPolicy",
      metadata: { name },
      spec: {
        failurePolicy: "Fail",
        matchConstraints: { resourceRules: [{ apiGroups: [""], apiVersions: ["v1"], operations: ["CREATE", "UPDATE"], resources: [...resources] }] },
        ...(variables ? { variables } : {}),
        validations,
      },
    },
    {
      apiVersion: "admissionregistration.k8s.io/v1",
      kind: "ValidatingAdmissionPolicyBinding",
      metadata: { name },
      spec: { policyName: name, validationActions: ["Deny"] },
    },
  ];
}
