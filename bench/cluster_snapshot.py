"""How long a snapshot pull holds the serving primary (issue 20; run by hand, not by make bench).

Three primaries on free loopback ports; N catalog items (default 100000) added on node 1; then
FLUSHALL on node 2, which pulls the registry back from its peers while a thread PINGs node 1 and
records the worst round trip (against a 3 s baseline of digests only). Needs the release module
(cargo build --release -p session-store) and redis-py (clients/python/.venv has it):

    clients/python/.venv/bin/python bench/cluster_snapshot.py
"""

import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time

import redis

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MOD = os.path.join(ROOT, "target/release/libsession_store.so")
D = tempfile.mkdtemp(prefix="snapshot-bench-")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


ports = [free_port() for _ in range(3)]
buses = [free_port() for _ in range(3)]
for p, bus in zip(ports, buses):
    os.makedirs(f"{D}/{p}")
    subprocess.run(
        [
            "redis-server",
            "--port",
            str(p),
            "--cluster-port",
            str(bus),
            "--cluster-enabled",
            "yes",
            "--cluster-node-timeout",
            "5000",
            "--loadmodule",
            MOD,
            "--daemonize",
            "yes",
            "--dir",
            f"{D}/{p}",
            "--logfile",
            f"{D}/{p}/log",
            "--save",
            "",
        ],
        check=True,
    )
time.sleep(0.5)
r = [redis.Redis(port=p) for p in ports]
r[0].execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 5460)
r[1].execute_command("CLUSTER", "ADDSLOTSRANGE", 5461, 10922)
r[2].execute_command("CLUSTER", "ADDSLOTSRANGE", 10923, 16383)
r[0].execute_command("CLUSTER", "MEET", "127.0.0.1", ports[1], buses[1])
r[0].execute_command("CLUSTER", "MEET", "127.0.0.1", ports[2], buses[2])
while not all(b"cluster_state:ok" in c.execute_command("CLUSTER", "INFO") for c in r):
    time.sleep(0.1)
time.sleep(2)


def digest(c):
    return c.info("session").get("session_registry_digest")


N = int(os.environ.get("N", "100000"))
t = time.time()
p = r[0].pipeline(transaction=False)
for i in range(N):
    p.execute_command(
        "SESSION.CATALOG",
        "ADD",
        "big",
        f"item:{i}",
        "SCORE",
        i % 1000,
        "CATEGORIES",
        1,
        f"c{i % 20}",
    )
    if i % 5000 == 4999:
        p.execute()
        p = r[0].pipeline(transaction=False)
p.execute()
load = time.time() - t
while len({str(digest(c)) for c in r}) > 1:
    time.sleep(0.05)
conv = time.time() - t
print(f"{N} items: added in {load:.1f}s, all 3 primaries equal after {conv:.1f}s")
stop = False
worst = [0.0]


def pinger():
    c = redis.Redis(port=ports[0])
    while not stop:
        a = time.perf_counter()
        c.ping()
        worst[0] = max(worst[0], time.perf_counter() - a)


th = threading.Thread(target=pinger)
th.start()
time.sleep(0.5)
worst[0] = 0
time.sleep(3)
print(f"baseline worst PING RTT over 3 s (digests only): {worst[0] * 1000:.1f} ms")
worst[0] = 0
t = time.time()
r[1].flushall()
while str(digest(r[1])) != str(digest(r[0])):
    time.sleep(0.02)
rep = time.time() - t
stop = True
th.join()
print(
    f"FLUSHALL on node 2: registry back in {rep:.2f}s; "
    f"worst PING RTT on the serving node {worst[0] * 1000:.1f} ms"
)
print(
    r[1].info("session").get("session_registry_snapshots_pulled"),
    r[0].info("session").get("session_registry_snapshots_served"),
)
for c in r:
    c.shutdown(nosave=True)
shutil.rmtree(D, ignore_errors=True)
