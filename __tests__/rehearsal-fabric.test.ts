/**
 * The fabric rehearsal (issues #23 and #24): one cluster of 3 control planes and 2 workers
 * formed from the applied user data, with Calico running and Metal's two routers and an
 * Internet beyond them (support/fabric-rehearsal.ts). Its tests run in this order on the
 * one fabric: the init node's interrupted first boot (support/fabric-init-fault.ts); the
 * joins, the third control plane's interrupted ones included; the data plane; what the
 * Internet reaches; NAT64 and DNS64 to the Internet's IPv4; the faults, each putting the
 * fabric back; the prefix limit; the VXLAN comparison; last, the configuration stack,
 * which replaces the Local pool.
 *
 * What differs from Metal is in docs/rehearsal.md's table of differences.
 */
import { configStackTests } from "./support/fabric-config-stack-tests";
import { dataPlaneTests, Probes } from "./support/fabric-dataplane-tests";
import { faultTests } from "./support/fabric-fault-tests";
import { initFaultTests } from "./support/fabric-init-fault";
import { internetTests } from "./support/fabric-internet-tests";
import { joinTests } from "./support/fabric-join-tests";
import { nat64Tests } from "./support/fabric-nat64-tests";
import { overlayTests } from "./support/fabric-overlay-tests";
import { prefixLimitTests } from "./support/fabric-prefix-tests";
import { FabricRehearsal, fabricSkipReason } from "./support/fabric-rehearsal";

const why = fabricSkipReason();
if (why) console.warn(`SKIPPED fabric rehearsal (3 + 2 nodes, Calico's data plane, Metal's routers): ${why}`);
const describeRehearsal = why ? describe.skip : describe;

describeRehearsal("fabric rehearsal: 3 control planes and 2 workers, Calico's data plane and Metal's routers", () => {
  const fabric = new FabricRehearsal();
  const probes: Probes = new Map();

  beforeAll(() => fabric.start(), 1_200_000);
  afterAll(() => fabric.stop(), 300_000 + Number(process.env.V6FABRIC_HOLD_SECONDS ?? 0) * 1000);

  initFaultTests(fabric);
  joinTests(fabric);
  dataPlaneTests(fabric, probes);
  internetTests(fabric, probes);
  nat64Tests(fabric, probes);
  faultTests(fabric);
  prefixLimitTests(fabric);
  overlayTests(fabric);
  configStackTests(fabric);
});
