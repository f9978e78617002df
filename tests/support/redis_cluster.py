"""A throwaway Redis Cluster: 3 masters and 3 replicas on free ports, each a
`redis-server --cluster-enabled yes` with its files in its own folder, joined with
`redis-cli --cluster create`. Only the processes started here are ever stopped."""

from __future__ import annotations

import atexit
import contextlib
import random
import shutil
import signal
import socket
import subprocess
from pathlib import Path

from tests.support.services import ServiceUnavailable, _redis_ping, _wait_for

#: seconds a cluster may take to agree on a state (create, failover)
CLUSTER_TIMEOUT = 60.0


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def cluster_port() -> int:
    """A free port whose cluster bus port (+10000) is free too (so at most 55535)."""
    for _ in range(200):
        port = random.randint(20000, 55000)
        if _bindable(port) and _bindable(port + 10000):
            return port
    raise ServiceUnavailable("no free port pair for a Redis Cluster node")


class ClusterNode:
    """One `redis-server` of the cluster."""

    def __init__(self, root: Path, binary: str) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.binary = binary
        self.port = cluster_port()
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.root),
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            str(self.root / "nodes.conf"),
            "--cluster-node-timeout",
            "2000",
            "--appendonly",
            "yes",
            # every acknowledged write is on disk and sent to the replica before the reply
            "--appendfsync",
            "always",
            "--save",
            "",
            "--logfile",
            str(self.root / "redis.log"),
        ]
        self._process = subprocess.Popen(args, stdout=subprocess.DEVNULL, start_new_session=True)
        process = self._process
        _wait_for(lambda: _redis_ping(self.port) or process.poll() is not None, "redis-server")
        if process.poll() is not None:
            log = (self.root / "redis.log").read_text(errors="replace")[-2000:]
            raise ServiceUnavailable(f"redis-server exited with {process.returncode}:\n{log}")

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def kill(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGKILL)
            self._process.wait(timeout=30)
        self._process = None

    def pause(self) -> None:
        """SIGSTOP: the node holds its connections but answers nothing (a stalled replica)."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGCONT)

    def cli(self, *args: str, timeout: float = 10.0) -> str:
        done = subprocess.run(
            ["redis-cli", "-p", str(self.port), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return done.stdout

    def info(self) -> dict[str, str]:
        """`CLUSTER INFO` as a dict ({} when the node does not answer)."""
        facts: dict[str, str] = {}
        with contextlib.suppress(subprocess.TimeoutExpired):
            for line in self.cli("cluster", "info").splitlines():
                name, _, value = line.strip().partition(":")
                if value:
                    facts[name] = value
        return facts

    def role(self) -> str:
        with contextlib.suppress(subprocess.TimeoutExpired):
            lines = self.cli("role").splitlines()
            return lines[0].strip() if lines else ""
        return ""


class RedisCluster:
    """Six nodes, three of them masters with one replica each."""

    def __init__(self, root: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None or shutil.which("redis-cli") is None:
            raise ServiceUnavailable("redis-server and redis-cli are needed for a Redis Cluster")
        self.nodes = [ClusterNode(root / f"node-{i}", binary) for i in range(6)]
        atexit.register(self.close)

    @property
    def url(self) -> str:
        """A seed URL in the form syncd reads as a cluster: every node, so an instance
        (re)started after a node was killed still finds the cluster."""
        seeds = ",".join(f"127.0.0.1:{node.port}" for node in self.nodes)
        return f"redis+cluster://{seeds}/0"

    @property
    def running(self) -> ClusterNode:
        """A node that is up (to ask the cluster things)."""
        return next(node for node in self.nodes if node.running)

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        done = subprocess.run(
            [
                "redis-cli",
                "--cluster",
                "create",
                *(f"127.0.0.1:{node.port}" for node in self.nodes),
                "--cluster-replicas",
                "1",
                "--cluster-yes",
            ],
            capture_output=True,
            text=True,
            timeout=CLUSTER_TIMEOUT,
            check=False,
        )
        if done.returncode != 0:
            raise ServiceUnavailable(f"redis-cli --cluster create failed:\n{done.stdout}")
        self.wait_ok()
        # Replicas attach asynchronously after create: a failover needs them in sync.
        _wait_for(self._replicas_synced, "cluster replicas", CLUSTER_TIMEOUT)

    def _replicas_synced(self) -> bool:
        replicas = self.replicas()
        return len(replicas) == 3 and all(
            "master_link_status:up" in node.cli("info", "replication") for node in replicas
        )

    def wait_ok(self) -> None:
        """Bounded wait until every running node reports `cluster_state:ok` and agrees on
        the slot map."""

        def ok() -> bool:
            running = [node for node in self.nodes if node.running]
            return all(node.info().get("cluster_state") == "ok" for node in running)

        _wait_for(ok, "cluster_state:ok", CLUSTER_TIMEOUT)

    def masters(self) -> list[ClusterNode]:
        return [node for node in self.nodes if node.running and node.role() == "master"]

    def replicas(self) -> list[ClusterNode]:
        return [node for node in self.nodes if node.running and node.role() == "slave"]

    def owner_of(self, key: str) -> ClusterNode:
        """The master that serves `key`'s slot now."""
        slot = int(self.running.cli("cluster", "keyslot", key).strip())
        for node in self.masters():
            for line in node.cli("cluster", "nodes").splitlines():
                fields = line.split()
                if "myself" not in fields[2]:
                    continue
                for part in fields[8:]:
                    low, _, high = part.partition("-")
                    if low.isdigit() and int(low) <= slot <= int(high or low):
                        return node
        raise LookupError(f"no master serves slot {slot}")

    def replica_of(self, master: ClusterNode) -> ClusterNode:
        for node in self.replicas():
            if f"master_port:{master.port}" in node.cli("info", "replication"):
                return node
        raise LookupError(f"no replica of the master on port {master.port}")

    def failover(self, master: ClusterNode) -> ClusterNode:
        """A manual failover (`CLUSTER FAILOVER` on the replica: no acknowledged write is
        lost); returns the new master once the cluster is ok again."""
        replica = self.replica_of(master)
        replica.cli("cluster", "failover")
        _wait_for(lambda: replica.role() == "master", "the replica taking over", CLUSTER_TIMEOUT)
        self.wait_ok()
        return replica

    def close(self) -> None:
        atexit.unregister(self.close)
        for node in self.nodes:
            node.kill()


def start_redis_cluster(root: Path) -> RedisCluster:
    """Start a 3-master, 3-replica cluster; `.close()` when done."""
    cluster = RedisCluster(root)
    try:
        cluster.start()
    except BaseException:
        cluster.close()
        raise
    return cluster
