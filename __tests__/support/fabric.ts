/**
 * What the fabric rehearsal's tests use beside the cluster: address arithmetic written
 * apart from lib/address-plan.ts (so an expectation is never computed by the code under
 * test), waiting, the probes pods run with the host's Python, and the Internet: a
 * namespace beyond the metro with hosts outside the cluster's block.
 */
import { spawnSync } from "node:child_process";
import { Fabric } from "../../rehearsal/nodes";

/** An IPv6 address as a 128-bit number. */
export function toBigInt(address: string): bigint {
  const [head, tail = ""] = address.split("::");
  const words = (s: string) => (s ? s.split(":") : []);
  const h = words(head);
  const t = words(tail);
  const all = address.includes("::") ? [...h, ...Array(8 - h.length - t.length).fill("0"), ...t] : h;
  return all.reduce((acc, w) => (acc << 16n) | BigInt(parseInt(w, 16)), 0n);
}

export function inside(address: string, cidr: string): boolean {
  const [base, len] = cidr.split("/");
  const shift = 128n - BigInt(len);
  return toBigInt(address) >> shift === toBigInt(base) >> shift;
}

/** Zone 1's pod range: the block's second /60, its first /64. */
export function podRange(block: string): string {
  const base = toBigInt(block.split("/")[0]) + (1n << 68n);
  const words = Array.from({ length: 8 }, (_, i) => ((base >> BigInt(112 - 16 * i)) & 0xffffn).toString(16));
  return `${words.slice(0, 4).join(":")}::/64`;
}

export async function waitFor<T>(what: string, timeoutMs: number, probe: () => T | undefined): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2000));
  }
}

/** A TCP server that greets each client with its own host name and the address it sees the client at. */
export const TCP_SERVER = `
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("::", int(sys.argv[1]))); s.listen(4)
while True:
    c, peer = s.accept()
    c.sendall(("hello from " + socket.gethostname() + " to " + peer[0] + "\\n").encode()); c.close()
`;

/** Connects (from argv[3] when given) and prints the server's greeting. */
export const TCP_CLIENT = `
import socket, sys
source = (sys.argv[3], 0) if len(sys.argv) > 3 else None
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5, source_address=source)
print(c.recv(200).decode().strip())
`;

/** Connects (from argv[3] when given) and prints "connected": for servers that wait for the client to speak (TLS). */
export const TCP_CONNECT = `
import socket, sys
source = (sys.argv[3], 0) if len(sys.argv) > 3 else None
socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5, source_address=source).close()
print("connected")
`;

/**
 * Connects to every "address port" argument at once and prints one line per target:
 * "address port connected", "... timed out" (a drop) or "... refused" (a reset).
 */
export const TCP_CONNECT_ALL = `
import socket, sys, threading
def probe(address, port):
    try:
        socket.create_connection((address, int(port)), timeout=5).close(); result = "connected"
    except socket.timeout:
        result = "timed out"
    except ConnectionRefusedError:
        result = "refused"
    except OSError as e:
        result = "error " + str(e.errno)
    results[(address, port)] = result
results = {}
targets = [a.split() for a in sys.argv[1:]]
threads = [threading.Thread(target=probe, args=t) for t in targets]
for t in threads: t.start()
for t in threads: t.join()
for address, port in targets: print(address, port, results[(address, port)])
`;

/** Requests argv[1]:argv[2] every 200 ms until killed, a line per request: "<ms since epoch> ok" or "<ms> failed <reason>". */
export const TCP_CLIENT_LOOP = `
import socket, sys, time
while True:
    at = int(time.time() * 1000)
    try:
        c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2)
        c.recv(200); c.close(); print(at, "ok", flush=True)
    except OSError as e:
        print(at, "failed", type(e).__name__, e, flush=True)
    time.sleep(0.2)
`;

/** One ICMPv6 echo request; exits 0 when its reply arrives within 3 s. */
export const ICMPV6_ECHO = `
import socket, sys, time
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
s.settimeout(3)
s.sendto(bytes([128, 0, 0, 0, 0x12, 0x34, 0, 1]) + b"v6fabric", (sys.argv[1], 0))
end = time.time() + 3
while time.time() < end:
    data, peer = s.recvfrom(1500)
    if data[0] == 129 and data[4:6] == bytes([0x12, 0x34]):
        print("echo reply from " + peer[0]); sys.exit(0)
sys.exit(1)
`;

export interface Internet {
  readonly netns: string;
  /** A TCP connection from `source` (by default the first host) that prints what the server sends first. */
  greet(address: string, port: number, source?: string): { status: number | null; stdout: string; stderr: string };
  /** A bare TCP connection: prints "connected" when the handshake completes. */
  connect(address: string, port: number, source?: string): { status: number | null; stdout: string; stderr: string };
  echo(address: string): { status: number | null; stdout: string; stderr: string };
  /** What a TCP connection to each target meets, all at once: "connected", "timed out" or "refused", by "address port". */
  connectAll(targets: readonly { address: string; port: number }[]): Record<string, string>;
  /** Runs a command in the namespace. */
  run(argv: readonly string[], timeoutMs?: number): { status: number | null; stdout: string; stderr: string };
}

function sh(argv: readonly string[]): void {
  const r = spawnSync(argv[0], argv.slice(1), { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${argv.join(" ")}: ${r.stderr}`);
}

/** The Internet's IPv4 side: its link to the metro, and IPv4-only servers behind it. */
export interface InternetIpv4 {
  readonly link: { readonly gateway: string; readonly address: string; readonly prefixLength: number };
  /** Addresses the namespace holds (on lo) and the metro routes to it. */
  readonly servers: readonly string[];
}

/**
 * The Internet: a namespace joined to the metro's hub by a veth, with `hosts` (addresses
 * of one /64 whose first address is the hub's side), and `otherHosts` from further /64s
 * the hub routes to it; with `ipv4`, an IPv4 link to the metro and IPv4 servers. The
 * fabric removes the namespace with its own.
 */
export function addInternet(fabric: Fabric, subnet: { gateway: string; hosts: readonly string[]; otherHosts?: readonly string[]; ipv4?: InternetIpv4 }): Internet {
  const netns = `${fabric.id}-inet`;
  const hubSide = `${fabric.id}i`;
  sh(["ip", "netns", "add", netns]);
  fabric.adoptNamespace(netns);
  sh(["ip", "link", "add", hubSide, "type", "veth", "peer", "name", "eth0", "netns", netns]);
  sh(["ip", "link", "set", hubSide, "netns", fabric.hub]);
  const inHub = (argv: string[]) => sh(["ip", "netns", "exec", fabric.hub, ...argv]);
  const inNet = (argv: string[]) => sh(["ip", "netns", "exec", netns, ...argv]);
  inHub(["ip", "-6", "addr", "add", `${subnet.gateway}/64`, "dev", hubSide, "nodad"]);
  inHub(["ip", "link", "set", hubSide, "up"]);
  inNet(["ip", "link", "set", "lo", "up"]);
  for (const host of subnet.hosts) inNet(["ip", "-6", "addr", "add", `${host}/64`, "dev", "eth0", "nodad"]);
  for (const host of subnet.otherHosts ?? []) {
    // Deprecated (preferred_lft 0): used only when a client binds it, never picked as
    // the source of the namespace's own connections.
    inNet(["ip", "-6", "addr", "add", `${host}/128`, "dev", "eth0", "nodad", "preferred_lft", "0"]);
    inHub(["ip", "-6", "route", "add", `${host}/128`, "via", subnet.hosts[0], "dev", hubSide]);
  }
  inNet(["ip", "link", "set", "eth0", "up"]);
  inNet(["ip", "-6", "route", "add", "default", "via", subnet.gateway]);
  if (subnet.ipv4) {
    const { link, servers } = subnet.ipv4;
    inHub(["ip", "-4", "addr", "add", `${link.gateway}/${link.prefixLength}`, "dev", hubSide]);
    inNet(["ip", "-4", "addr", "add", `${link.address}/${link.prefixLength}`, "dev", "eth0"]);
    inNet(["ip", "-4", "route", "add", "default", "via", link.gateway]);
    // On lo: local delivery is all the servers need, and the metro routes each to the namespace.
    for (const server of servers) {
      inNet(["ip", "-4", "addr", "add", `${server}/32`, "dev", "lo"]);
      inHub(["ip", "-4", "route", "add", `${server}/32`, "via", link.address, "dev", hubSide]);
    }
  }
  const run = (argv: readonly string[], timeoutMs = 15_000) => {
    const r = spawnSync("ip", ["netns", "exec", netns, ...argv], { encoding: "utf8", timeout: timeoutMs });
    return { status: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
  };
  const python = (script: string, args: string[]) => run(["/usr/bin/python3", "-c", script, ...args]);
  return {
    netns,
    run,
    greet: (address, port, source) => python(TCP_CLIENT, [address, String(port), ...(source ? [source] : [])]),
    connect: (address, port, source) => python(TCP_CONNECT, [address, String(port), ...(source ? [source] : [])]),
    echo: (address) => python(ICMPV6_ECHO, [address]),
    connectAll: (targets) => {
      const r = python(TCP_CONNECT_ALL, targets.map((t) => `${t.address} ${t.port}`));
      if (r.status !== 0) throw new Error(`probing ${targets.length} targets: ${r.stderr}`);
      return Object.fromEntries(r.stdout.trim().split("\n").map((l) => l.split(" ")).map(([a, p, ...result]) => [`${a} ${p}`, result.join(" ")]));
    },
  };
}

/** [exit status, output, timed out]: what a connection that a firewall drops looks like. */
export function dropped(r: { status: number | null; stdout: string; stderr: string }): [number | null, string, boolean] {
  return [r.status, r.stdout, /timed out|TimeoutError/.test(r.stderr)];
}
