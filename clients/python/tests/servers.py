"""redis-server processes for the tests: free loopback ports, temporary directories, the module
loaded, always stopped (the fixtures in conftest.py stop them even when a test fails).

The module: $SESSION_MODULE, else <repo>/target/release/libsession_store.so (the repo root is
three levels above this file: clients/python/tests). The server: $REDIS_SERVER, else redis-server
on PATH; redis-cli next to it (or on PATH) builds the cluster.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def module_path() -> str:
    path = os.environ.get("SESSION_MODULE") or str(
        ROOT / "target" / "release" / "libsession_store.so"
    )
    if not Path(path).is_file():
        raise RuntimeError(
            f"session module not found at {path}: build it (cargo build --release -p "
            "session-store) or set SESSION_MODULE"
        )
    return path


def server_binary() -> str:
    return os.environ.get("REDIS_SERVER", "redis-server")


def cli_binary() -> str | None:
    server = shutil.which(server_binary())
    if server:
        beside = Path(server).with_name("redis-cli")
        if beside.is_file():
            return str(beside)
    return shutil.which("redis-cli")


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(cluster: bool = False) -> int:
    """A port the kernel says is free (and, for a cluster node, its bus port +10000 too)."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if not cluster:
            return port
        if port + 10000 < 65536 and _bindable(port + 10000):
            return port
    raise RuntimeError("no free port pair")


def wait_for(condition, what: str, timeout: float = 20.0, step: float = 0.02):
    """Poll `condition` until it returns a true value (which is returned)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(step)


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class Server:
    """One redis-server with the module on a free loopback port."""

    def __init__(self, extra: list[str] | None = None, cluster: bool = False) -> None:
        self.dir = tempfile.mkdtemp(prefix="session-py-")
        self.proc: subprocess.Popen | None = None
        self.port = 0
        last = ""
        for _ in range(5):  # another process may take the port between the check and the bind
            self.port = free_port(cluster)
            args = [
                server_binary(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                self.dir,
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--logfile",
                "redis.log",
                "--loadmodule",
                module_path(),
            ]
            if cluster:
                args += ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
            args += extra or []
            self.proc = subprocess.Popen(
                args, cwd=self.dir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self.proc.poll() is None:
                if _ping(self.port):
                    return
                time.sleep(0.02)
            last = self.log()
            self.stop(keep_dir=True)
        shutil.rmtree(self.dir, ignore_errors=True)
        raise RuntimeError(f"redis-server did not start:\n{last}")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def log(self) -> str:
        try:
            return (Path(self.dir) / "redis.log").read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, keep_dir: bool = False) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if not keep_dir:
            shutil.rmtree(self.dir, ignore_errors=True)


class Cluster:
    """Three primaries on loopback (no replicas), slots assigned by redis-cli --cluster create."""

    def __init__(self, size: int = 3) -> None:
        cli = cli_binary()
        if cli is None:
            raise RuntimeError("redis-cli not found")
        self.nodes: list[Server] = []
        try:
            for _ in range(size):
                self.nodes.append(Server(cluster=True))
            addrs = [f"127.0.0.1:{n.port}" for n in self.nodes]
            out = subprocess.run(
                [cli, "--cluster", "create", *addrs, "--cluster-replicas", "0", "--cluster-yes"],
                capture_output=True,
                text=True,
                timeout=60,
            )
            if out.returncode != 0:
                raise RuntimeError(f"redis-cli --cluster create failed:\n{out.stdout}{out.stderr}")
            for node in self.nodes:
                wait_for(lambda n=node: self._ok(cli, n.port), f"cluster_state:ok on {node.port}")
        except BaseException:
            self.stop()
            raise

    @staticmethod
    def _ok(cli: str, port: int) -> bool:
        out = subprocess.run(
            [cli, "-p", str(port), "cluster", "info"], capture_output=True, text=True, timeout=10
        )
        return "cluster_state:ok" in out.stdout and "cluster_slots_assigned:16384" in out.stdout

    def add_replica(self, primary: int = 0) -> Server:
        """A new node replicating primary number `primary` (CLUSTER MEET + CLUSTER REPLICATE),
        returned once its link is up and every primary lists it; stopped with the cluster."""
        cli = cli_binary()
        assert cli is not None
        head = self.nodes[primary]

        def run(port: int, *args: str) -> str:
            return subprocess.run(
                [cli, "-p", str(port), *args], capture_output=True, text=True, timeout=10
            ).stdout

        replica = Server(cluster=True)
        self.nodes.append(replica)
        run(replica.port, "cluster", "meet", "127.0.0.1", str(head.port))
        head_id = run(head.port, "cluster", "myid").strip()
        wait_for(
            lambda: head_id in run(replica.port, "cluster", "nodes"),
            "the replica meets its primary",
        )
        wait_for(
            lambda: run(replica.port, "cluster", "replicate", head_id).strip() == "OK",
            "CLUSTER REPLICATE",
        )
        wait_for(
            lambda: "master_link_status:up" in run(replica.port, "info", "replication"),
            "the replica's link",
        )
        for node in self.nodes[:-1]:
            wait_for(
                lambda n=node: f"slave {head_id}" in run(n.port, "cluster", "nodes"),
                "every node lists the replica",
            )
            # CLUSTER SLOTS (what clients read) lists a replica once it has synced
            wait_for(
                lambda n=node: f"\n{replica.port}\n" in run(n.port, "cluster", "slots"),
                "CLUSTER SLOTS lists the replica",
            )
        return replica

    @property
    def startup_nodes(self):
        return [("127.0.0.1", n.port) for n in self.nodes]

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        self.nodes = []
