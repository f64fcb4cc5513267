"""
Runs inside a fresh network namespace (`unshare -n`): this namespace is a control plane
whose API server listens at A, and a second namespace is a pod behind a veth. A
kube-proxy stand-in DNATs the pod's connections to the ClusterIP to A (prerouting); the
shipped api-path script (argv[1], run once per phase with real nft) installs the node's
own path. Prints one JSON line: what each connection saw before and after A left the
path's ready set.
"""
import json
import os
import socket
import subprocess
import sys
import threading
import time

SCRIPT, READY = sys.argv[1], sys.argv[2]
A, B, SVC = "2001:db8:0:ab00::1", "2001:db8:0:ab00::3", "2001:db8:0:ab02::1"


def sh(command):
    subprocess.run(command, shell=True, check=True)


def api_path(ready):
    with open(READY, "w") as f:
        f.write(ready + "\n")
    subprocess.run(["bash", SCRIPT], check=True, stdout=subprocess.DEVNULL)


def serve(server):
    while True:
        conn, _ = server.accept()
        threading.Thread(target=echo, args=(conn,), daemon=True).start()


def echo(conn):
    try:
        while True:
            data = conn.recv(64)
            if not data:
                return
            conn.sendall(data)
    except OSError:
        return


def exchange(sock):
    try:
        sock.sendall(b"ping\n")
        return "ok" if sock.recv(64) == b"ping\n" else "wrong"
    except ConnectionResetError:
        return "reset"
    except socket.timeout:
        return "timeout"


POD_CLIENT = """
import socket, sys
s = socket.create_connection(("%s", 443), timeout=3)
for line in sys.stdin:
    try:
        s.sendall(b"ping\\n")
        print("ok" if s.recv(64) == b"ping\\n" else "wrong", flush=True)
    except ConnectionResetError:
        print("reset", flush=True)
    except socket.timeout:
        print("timeout", flush=True)
""" % SVC

sh("ip link set lo up")
pod_ns = subprocess.Popen(["unshare", "-n", "sleep", "60"])
# Whatever fails below, the pod's namespace must not outlive the test.
sys.excepthook = lambda *info: (pod_ns.kill(), sys.__excepthook__(*info))
time.sleep(0.3)
sh(f"ip link add n0 type veth peer name p0 netns {pod_ns.pid}")
sh(f"ip addr add fd00::1/64 dev n0 nodad && ip link set n0 up && ip addr add {A}/128 dev lo")
sh("ip -6 route add default via fd00::2 dev n0")
sh(f"nsenter -t {pod_ns.pid} -n sh -c 'ip link set lo up && ip addr add fd00::2/64 dev p0 nodad && ip link set p0 up && ip -6 route add default via fd00::1'")
KUBE_PROXY = f"table ip6 kube-proxy {{\nchain prerouting {{\ntype nat hook prerouting priority -100; policy accept;\nip6 daddr {SVC} tcp dport 443 dnat to {A}\n}}\n}}\n"
subprocess.run(["nft", "-f", "-"], input=KUBE_PROXY, text=True, check=True)

server = socket.socket(socket.AF_INET6)
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("::", 443))
server.listen()
threading.Thread(target=serve, args=(server,), daemon=True).start()

result = {}
api_path(A)
local = socket.create_connection((SVC, 443), timeout=3)
pod = subprocess.Popen(["nsenter", "-t", str(pod_ns.pid), "-n", sys.executable, "-c", POD_CLIENT], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
time.sleep(0.3)


def pod_exchange():
    pod.stdin.write("go\n")
    pod.stdin.flush()
    return pod.stdout.readline().strip()


result["before"] = {"node": exchange(local), "pod": pod_exchange()}
api_path(B)
result["after"] = {"node": exchange(local), "pod": pod_exchange()}
print(json.dumps(result), flush=True)
pod.kill()
pod_ns.kill()
