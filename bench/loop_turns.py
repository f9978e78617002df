"""CPU time of every event-loop turn of a whole syncd server under the fanout load.

At ~7,200 deliveries/s the fanout p99 is set by rare long loop turns: one callback that
takes several ms of CPU holds every delivery queued behind it. This finds them. syncd runs
as a subprocess (this file in `--serve` mode, with `PYTHONPATH` set to the source tree)
on the stdlib asyncio loop instead of uvloop, because only there is every callback a
Python `asyncio.events.Handle` whose `_run` can be wrapped (a task step, a wake-up, a
transport's `_read_ready`, a timer: all go through it). Each callback's cost is the loop
thread's CPU time (`time.thread_time`), so other processes on a loaded machine do not
count; a callback is named by its task's coroutine (with where it resumed and where it
suspended, for the slow ones) or by its function (a socket read by its protocol's class).

`bench/loadgen.mjs` drives the `fanout` scenario (20 rooms x 10 clients, 4 writers each,
800 keystrokes/s: 7,200 deliveries/s) or `fanout-cursors` (the same with 5 cursor moves
per writer per second); turns are counted from when every client is connected until the
timed phase ends, and `/metrics` is scraped every `--scrape` seconds meanwhile, as a
Prometheus server would.

    .venv/bin/python bench/loop_turns.py                                   # this tree, 60 s
    .venv/bin/python bench/loop_turns.py --tree base=/tmp/base --tree new=. --rounds 3

Trees are alternated round by round; the report gives, per tree, the medians over rounds
of the number of turns over 1 ms and over 5 ms and of the longest turn, and the callbacks
whose turns went over `--threshold-ms` (count, max, where). Stalls that are not the loop's
CPU show too: each callback's and each loop iteration's wall time beside the thread's
run-queue wait (`/proc/thread-self/schedstat`; the rest is time blocked: I/O, a lock, the
GIL), every gc collection by generation, the SQLite appender's calls in either thread,
the COMMITs of SQLAlchemy's connections in their aiosqlite thread (an autocheckpoint runs
inside one), how long each writer holds the store's write lock, and loadgen's deliveries
slower than `--slow-ms`, lined up by epoch time with what the server did in the 100 ms
before. Traffic goes to 127.0.0.1 only; every wait is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
SECRET = "bench-secret-not-for-production-0123456789"
#: upper edges (ms) of the histogram buckets; the last bucket is everything above
EDGES_MS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0)


# -- the server side (`--serve`): runs inside the measured process ---------------------------


class _Turns:
    """What the wrapped `Handle._run` records: all turns in buckets, slow ones by name."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self.on = False
        self.started = 0.0
        self.window = 0.0
        self.count = 0
        self.cpu = 0.0
        self.buckets = [0] * (len(EDGES_MS) + 1)
        #: name -> [count over threshold, total cpu of those, max, {site: count}]
        self.slow: dict[str, list[Any]] = {}
        #: name -> [count, total cpu] of every turn (the busy callbacks, slow or not)
        self.all: dict[str, list[float]] = {}
        #: the same turns by wall time (`perf_counter`): a turn that waited (the GIL held by
        #: another thread, a blocking call) is long here and short in CPU time
        self.wall_buckets = [0] * (len(EDGES_MS) + 1)
        #: loop iterations (select returned -> next select): every callback run in one
        #: iteration delays the sends of the last one; wall time and callbacks run
        self.iter_buckets = [0] * (len(EDGES_MS) + 1)
        self.iter_max = (0.0, 0)
        #: gc collections: generation -> [count, total s, max s]
        self.gc: dict[int, list[float]] = {}
        #: SQLite calls of the appender, by kind: [count, total s, max s]
        self.sqlite: dict[str, list[float]] = {}
        #: (epoch s, kind, wall ms, cpu ms, runnable-but-not-running ms, what) of
        #: everything over the threshold; wall - cpu - runnable is time the thread was
        #: blocked (I/O, a lock, the GIL), not time the machine's load took
        self.timeline: list[tuple[float, str, float, float, float, str]] = []
        #: callbacks by that blocked time
        self.blocked_buckets = [0] * (len(EDGES_MS) + 1)
        #: name -> [count, total s, max s] of callbacks blocked over the threshold
        self.blocked: dict[str, list[float]] = {}

    def start(self, *_: object) -> None:
        self.started = time.monotonic()
        self.on = True

    def event(self, kind: str, wall: float, cpu: float, queued: float, what: str) -> None:
        if len(self.timeline) < 20_000:
            self.timeline.append((time.time(), kind, wall * 1000, cpu * 1000, queued * 1000, what))

    def stop(self, *_: object) -> None:
        if self.on:
            self.window = time.monotonic() - self.started
        self.on = False


def _schedstat() -> Callable[[], float]:
    """This thread's time runnable but waiting for a CPU, in s (`/proc/thread-self/
    schedstat`, second field): what a loaded machine adds to a callback's wall time."""
    fd = os.open("/proc/thread-self/schedstat", os.O_RDONLY)

    def queued() -> float:
        return int(os.pread(fd, 128, 0).split()[1]) / 1e9

    return queued


_OURS = f"{os.sep}syncd{os.sep}"


def _coro_site(coro: Any) -> str:
    """Where a coroutine chain stands: the innermost awaiting frame (function:line)."""
    frame = mine = None
    for _ in range(64):  # bounded walk down the await chain
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None) or frame
        if frame is not None and _OURS in frame.f_code.co_filename:
            mine = frame
        nxt = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
        if nxt is None or not (hasattr(nxt, "cr_frame") or hasattr(nxt, "gi_frame")):
            break
        coro = nxt
    frame = mine or frame  # the innermost syncd frame says more than a library's
    if frame is None:
        return "-"
    code = frame.f_code
    return f"{Path(code.co_filename).name}:{code.co_qualname}:{frame.f_lineno}"


def _name(callback: Any) -> tuple[str, Any]:
    """(name of a callback, its coroutine or None)."""
    owner = getattr(callback, "__self__", None)
    if isinstance(owner, asyncio.Task):  # a task step or wake-up (C TaskStepMethWrapper)
        coro = owner.get_coro()
        return "task " + getattr(coro, "__qualname__", type(coro).__name__), coro
    func = getattr(callback, "func", None)  # functools.partial
    if func is not None:
        return _name(func)
    qualname = getattr(callback, "__qualname__", type(callback).__qualname__)
    if qualname.endswith("._read_ready") and owner is not None:
        protocol = getattr(owner, "_protocol", None)
        return f"{qualname} -> {type(protocol).__qualname__}", None
    module = getattr(callback, "__module__", "") or ""
    return f"{module}.{qualname}", None


def _install(turns: _Turns) -> None:
    """Wrap `asyncio.events.Handle._run` (TimerHandle inherits it): the stdlib loop runs
    every callback through it. A library internal of asyncio; `--serve` fails loudly if
    it is gone (the attribute lookup below)."""
    from asyncio import events

    original: Callable[[Any], None] = events.Handle._run  # type: ignore[attr-defined]
    clock = time.thread_time
    wall_clock = time.perf_counter
    queued = _schedstat()
    edges = [edge / 1000 for edge in EDGES_MS]
    nbuckets = len(edges)

    def _bucket(value: float) -> int:
        index = 0
        while index < nbuckets and value > edges[index]:
            index += 1
        return index

    def _run(handle: Any) -> None:
        if not turns.on:
            original(handle)
            return
        name, coro = _name(handle._callback)
        before = _coro_site(coro) if coro is not None else ""
        queued_start = queued()
        wall_start = wall_clock()
        start = clock()
        original(handle)
        spent = clock() - start
        wall = wall_clock() - wall_start
        waited = queued() - queued_start
        blocked = max(0.0, wall - spent - waited)
        turns.wall_buckets[_bucket(wall)] += 1
        turns.blocked_buckets[_bucket(blocked)] += 1
        if blocked > turns.threshold:
            entry_b = turns.blocked.setdefault(name, [0, 0.0, 0.0])
            entry_b[0] += 1
            entry_b[1] += blocked
            entry_b[2] = max(entry_b[2], blocked)
        if wall > turns.threshold or spent > turns.threshold:
            turns.event("callback", wall, spent, waited, name)
        turns.count += 1
        turns.cpu += spent
        index = 0
        while index < nbuckets and spent > edges[index]:
            index += 1
        turns.buckets[index] += 1
        total = turns.all.get(name)
        if total is None:
            turns.all[name] = [1, spent]
        else:
            total[0] += 1
            total[1] += spent
        if spent > turns.threshold:
            after = _coro_site(coro) if coro is not None else ""
            site = f"{before} -> {after}" if coro is not None else ""
            entry = turns.slow.setdefault(name, [0, 0.0, 0.0, {}])
            entry[0] += 1
            entry[1] += spent
            entry[2] = max(entry[2], spent)
            entry[3][site] = entry[3].get(site, 0) + 1

    events.Handle._run = _run  # type: ignore[attr-defined,method-assign]
    _install_iterations(turns, _bucket, queued)
    _install_gc(turns, queued)
    _install_sqlite(turns)


def _install_iterations(
    turns: _Turns, bucket: Callable[[float], int], queued: Callable[[], float]
) -> None:
    """Time each loop iteration's work: from `select` returning to the next `select` call
    (the selector the stdlib loop makes is the default one of `selectors`)."""
    import selectors

    cls = selectors.DefaultSelector
    original = cls.select
    state = {"returned": 0.0, "cpu": 0.0, "queued": 0.0}

    def select(self: Any, timeout: float | None = None) -> Any:
        now = time.perf_counter()
        if turns.on and state["returned"]:
            wall = now - state["returned"]
            turns.iter_buckets[bucket(wall)] += 1
            if wall > turns.iter_max[0]:
                turns.iter_max = (wall, turns.count)
            if wall > turns.threshold:
                cpu = time.thread_time() - state["cpu"]
                turns.event("iteration", wall, cpu, queued() - state["queued"], "")
        ready = original(self, timeout)
        state["returned"] = time.perf_counter()
        state["cpu"] = time.thread_time()
        state["queued"] = queued()
        return ready

    cls.select = select  # type: ignore[method-assign]


def _install_gc(turns: _Turns, queued: Callable[[], float]) -> None:
    """Every collection's wall and CPU time, by generation (`gc.callbacks`; the loop
    thread's collections only are lined up with its run-queue time)."""
    import gc

    started = {"wall": 0.0, "cpu": 0.0, "queued": 0.0}

    def callback(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started["wall"] = time.perf_counter()
            started["cpu"] = time.thread_time()
            started["queued"] = queued()
            return
        if not turns.on:
            return
        wall = time.perf_counter() - started["wall"]
        cpu = time.thread_time() - started["cpu"]
        gen = info.get("generation", -1)
        entry = turns.gc.setdefault(gen, [0, 0.0, 0.0])
        entry[0] += 1
        entry[1] += wall
        entry[2] = max(entry[2], wall)
        if wall > turns.threshold or gen == 2:
            waited = queued() - started["queued"]
            turns.event(f"gc{gen}", wall, cpu, waited, f"collected {info.get('collected', 0)}")

    gc.callbacks.append(callback)


def _install_write_lock(turns: _Turns) -> None:
    """Time how long each writer of the process holds the store's write lock (the inline
    appends find it taken and fall back to waiting for it), by the holder's task."""
    import types

    from syncd.storage import _engine

    class TimedLock(asyncio.Lock):
        held_since = 0.0
        holder = ""

        async def acquire(self) -> bool:
            await super().acquire()
            self.held_since = time.perf_counter()
            task = asyncio.current_task()
            coro = task.get_coro() if task is not None else None
            self.holder = _coro_site(coro) if coro is not None else "-"
            return True

        def release(self) -> None:
            held = time.perf_counter() - self.held_since
            super().release()
            if turns.on:
                entry = turns.sqlite.setdefault(f"write lock held by {self.holder}", [0, 0.0, 0.0])
                entry[0] += 1
                entry[1] += held
                entry[2] = max(entry[2], held)
                if held > turns.threshold:
                    turns.event("write lock held", held, 0.0, 0.0, self.holder)

    proxy = types.ModuleType("asyncio")
    proxy.__dict__.update(asyncio.__dict__)
    proxy.Lock = TimedLock  # type: ignore[attr-defined]
    _engine.asyncio = proxy  # type: ignore[attr-defined]


def _install_engine_commits(turns: _Turns) -> None:
    """Time the COMMIT of SQLAlchemy's SQLite connections in their aiosqlite thread (an
    autocheckpoint runs inside it), apart from the hand-offs to and from that thread."""
    import aiosqlite

    def timed_commit(self: Any) -> Any:
        conn = self._conn

        def commit() -> None:
            start = time.perf_counter()
            conn.commit()
            wall = time.perf_counter() - start
            if turns.on:
                entry = turns.sqlite.setdefault("engine commit (aiosqlite)", [0, 0.0, 0.0])
                entry[0] += 1
                entry[1] += wall
                entry[2] = max(entry[2], wall)
                if wall > turns.threshold:
                    turns.event("engine commit", wall, 0.0, 0.0, "")

        return self._execute(commit)

    aiosqlite.Connection.commit = timed_commit  # type: ignore[method-assign]


def _install_sqlite(turns: _Turns) -> None:
    """Time the embedded appender's SQLite calls (the inline commit and the checkpoints,
    in whichever thread they run)."""
    import threading

    from syncd.storage import _sqlite_appender as appender

    loop_thread = threading.get_ident()
    queues: dict[int, Callable[[], float]] = {}

    def timed(kind: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any) -> Any:
            queued = queues.get(threading.get_ident())
            if queued is None:
                queued = queues[threading.get_ident()] = _schedstat()
            start, cpu, waited = time.perf_counter(), time.thread_time(), queued()
            try:
                return fn(*args)
            finally:
                wall = time.perf_counter() - start
                where = "loop" if threading.get_ident() == loop_thread else "worker"
                if turns.on:
                    entry = turns.sqlite.setdefault(f"{kind} ({where})", [0, 0.0, 0.0])
                    entry[0] += 1
                    entry[1] += wall
                    entry[2] = max(entry[2], wall)
                    if wall > turns.threshold:
                        cpu = time.thread_time() - cpu
                        waited = queued() - waited
                        turns.event(f"sqlite {kind} ({where})", wall, cpu, waited, "")

        return wrapper

    _install_write_lock(turns)
    _install_engine_commits(turns)
    appender._append = timed("append", appender._append)  # type: ignore[attr-defined]
    appender._checkpoint = timed("checkpoint", appender._checkpoint)  # type: ignore[attr-defined]


def serve(out: Path, threshold_ms: float) -> int:
    """`syncd serve` on the asyncio loop with the wrapped `Handle._run`; SIGUSR1 starts
    counting, SIGUSR2 stops; the counts go to `out` as JSON when the server has stopped."""
    import threading

    import syncd.cli as cli

    turns = _Turns(threshold_ms / 1000)
    _install(turns)
    signal.signal(signal.SIGUSR1, turns.start)
    signal.signal(signal.SIGUSR2, turns.stop)
    configure = cli.server_config

    def _asyncio_loop(settings: Any) -> Any:
        config = configure(settings)
        config.loop = "asyncio"
        return config

    cli.server_config = _asyncio_loop  # type: ignore[assignment]
    # uvicorn re-raises the SIGTERM it caught once it has shut down, with the handler it
    # found installed: a Python one that returns lets the counts be written below
    signal.signal(signal.SIGTERM, lambda *_: None)
    code = cli.main(["serve"])
    turns.stop()
    slow = {
        name: {
            "count": entry[0],
            "cpu_ms": entry[1] * 1000,
            "max_ms": entry[2] * 1000,
            "sites": dict(sorted(entry[3].items(), key=lambda kv: -kv[1])[:6]),
        }
        for name, entry in turns.slow.items()
    }
    busiest = sorted(turns.all.items(), key=lambda kv: -kv[1][1])[:15]
    out.write_text(
        json.dumps(
            {
                "window_s": turns.window,
                "turns": turns.count,
                "cpu_s": turns.cpu,
                "buckets": turns.buckets,
                "slow": slow,
                "busiest": {k: {"count": v[0], "cpu_ms": v[1] * 1000} for k, v in busiest},
                "wall_buckets": turns.wall_buckets,
                "iter_buckets": turns.iter_buckets,
                "iter_max_ms": turns.iter_max[0] * 1000,
                "gc": {
                    str(gen): {"count": e[0], "total_ms": e[1] * 1000, "max_ms": e[2] * 1000}
                    for gen, e in sorted(turns.gc.items())
                },
                "sqlite": {
                    k: {"count": e[0], "total_ms": e[1] * 1000, "max_ms": e[2] * 1000}
                    for k, e in sorted(turns.sqlite.items())
                },
                "threads": sorted(t.name for t in threading.enumerate()),
                "blocked_buckets": turns.blocked_buckets,
                "blocked": {
                    k: {"count": e[0], "total_ms": e[1] * 1000, "max_ms": e[2] * 1000}
                    for k, e in sorted(turns.blocked.items(), key=lambda kv: -kv[1][1])
                },
                "timeline": turns.timeline,
            }
        )
    )
    return code


# -- the driver ------------------------------------------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=2.0) as response:
            return str(response.read().decode())
    except OSError:
        return ""


def _connections(port: int) -> float:
    match = re.search(
        r"^syncd_ws_connections_open(?:\{[^}]*\})? ([0-9.e+]+)$",
        _get(f"http://127.0.0.1:{port}/metrics"),
        re.M,
    )
    return float(match.group(1)) if match else 0.0


def run_once(label: str, tree: Path, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """One server from `tree` under one loadgen run; the child's counts plus loadgen's line."""
    folder = Path(tempfile.mkdtemp(prefix=f"{label}-", dir=workdir))
    (folder / "data").mkdir()
    port = _free_port()
    out = folder / "turns.json"
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DATABASE_URL"}}
    env.update(
        {
            "JWT_SECRET": SECRET,
            "SYNCD_AUTO_CREATE_NOTES": "1",
            "SYNCD_RATE_LIMITS": "0",
            "SYNCD_DATA_DIR": str(folder / "data"),
            "DATABASE_URL": f"sqlite:///{folder / 'data' / 'syncd.db'}",
            "SYNCD_LOG_LEVEL": "warning",
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "PYTHONPATH": str(tree),
        }
    )
    serve_argv = [sys.executable, __file__, "--serve", str(out)]
    serve_argv += ["--threshold-ms", str(args.threshold_ms)]
    log = (folder / "server.log").open("wb")
    server = subprocess.Popen(serve_argv, env=env, cwd=tree, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while "syncd_" not in _get(f"http://127.0.0.1:{port}/metrics"):
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{label}: server did not start (see {folder}/server.log)")
            time.sleep(0.2)
        clients = args.rooms * args.clients
        loadgen_argv = ["node", str(BENCH / "loadgen.mjs"), "fanout", "--target", "syncd"]
        loadgen_argv += ["--url", f"ws://127.0.0.1:{port}", "--secret", SECRET]
        loadgen_argv += ["--rooms", str(args.rooms), "--clients", str(args.clients)]
        loadgen_argv += ["--writers", str(args.writers), "--rate", str(args.rate)]
        loadgen_argv += ["--duration", str(args.duration), "--warmup", "2"]
        loadgen_argv += ["--pids", str(server.pid), "--timeout", str(int(args.duration) + 240)]
        if args.scenario == "fanout-cursors":
            loadgen_argv += ["--awareness", str(args.awareness)]
        if args.slow_ms:
            loadgen_argv += ["--slow-ms", str(args.slow_ms)]
        loadgen = subprocess.Popen(
            loadgen_argv, cwd=BENCH, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        deadline = time.monotonic() + 120
        while _connections(port) < clients:
            if loadgen.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{label}: clients did not all connect")
            time.sleep(0.1)
        server.send_signal(signal.SIGUSR1)
        end = time.monotonic() + 2 + args.duration
        next_scrape = time.monotonic() + args.scrape
        while time.monotonic() < end and loadgen.poll() is None:
            if args.scrape and time.monotonic() >= next_scrape:
                _get(f"http://127.0.0.1:{port}/metrics")
                next_scrape += args.scrape
            time.sleep(0.05)
        server.send_signal(signal.SIGUSR2)
        stdout, _ = loadgen.communicate(timeout=int(args.duration) + 240)
        lines = [line for line in stdout.splitlines() if line.startswith("{")]
        result: dict[str, Any] = {"loadgen": json.loads(lines[-1]) if lines else {}}
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)
        log.close()
    if not out.exists():
        tail = (folder / "server.log").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{label}: no counts written; server log:\n{tail}")
    result.update(json.loads(out.read_text()))
    return result


def _over(buckets: list[int], ms: float) -> int:
    """Turns above `ms` (an edge of EDGES_MS)."""
    return sum(buckets[EDGES_MS.index(ms) + 1 :])


def report(results: dict[str, list[dict[str, Any]]], threshold_ms: float, top: int) -> None:
    def med(values: list[float]) -> float:
        return statistics.median(values) if values else 0.0

    print(
        "\n| tree | rounds | turns/s | >1 ms | >5 ms | max ms (med / worst)"
        " | CPU ms/s in >1 ms turns | deliveries/s | p99 ms (wall) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for label, runs in results.items():
        maxes = [max((s["max_ms"] for s in run["slow"].values()), default=0.0) for run in runs]
        rate = med([run["turns"] / max(run["window_s"], 1e-9) for run in runs])
        lat = [run["loadgen"].get("latency_ms", {}).get("p99", float("nan")) for run in runs]
        dps = [run["loadgen"].get("deliveries_per_s", float("nan")) for run in runs]
        share = med(
            [
                sum(slow["cpu_ms"] for slow in run["slow"].values()) / max(run["window_s"], 1e-9)
                for run in runs
            ]
        )
        print(
            f"| {label} | {len(runs)} | {rate:,.0f} | "
            f"{med([_over(r['buckets'], 1.0) for r in runs]):.0f} "
            f"({', '.join(str(_over(r['buckets'], 1.0)) for r in runs)}) | "
            f"{med([_over(r['buckets'], 5.0) for r in runs]):.0f} "
            f"({', '.join(str(_over(r['buckets'], 5.0)) for r in runs)}) | "
            f"{med(maxes):.2f} / {max(maxes, default=0):.2f} | {share:.2f} | "
            f"{med(dps):,.0f} | {med(lat):.2f} |"
        )
    for label, runs in results.items():
        print(f"\n{label}: callbacks with turns over {threshold_ms} ms (all rounds)")
        merged: dict[str, list[Any]] = {}
        for run in runs:
            for name, slow in run["slow"].items():
                entry = merged.setdefault(name, [0, 0.0, {}])
                entry[0] += slow["count"]
                entry[1] = max(entry[1], slow["max_ms"])
                for site, n in slow["sites"].items():
                    entry[2][site] = entry[2].get(site, 0) + n
        print("| callback | count | max ms | where (resumed -> suspended) |")
        print("|---|---|---|---|")
        for name, (count, worst, sites) in sorted(merged.items(), key=lambda kv: -kv[1][0])[:top]:
            where = "; ".join(
                f"{s} x{n}" for s, n in sorted(sites.items(), key=lambda kv: -kv[1])[:3]
            )
            print(f"| {name} | {count} | {worst:.2f} | {where} |")
        buckets = [sum(run["buckets"][i] for run in runs) for i in range(len(EDGES_MS) + 1)]
        labels = [f"<={e}" for e in EDGES_MS] + [f">{EDGES_MS[-1]}"]
        print(
            "histogram (ms, all rounds): "
            + ", ".join(f"{lb}: {n}" for lb, n in zip(labels, buckets, strict=True))
        )
        for key, title in (
            ("wall_buckets", "callbacks by wall time"),
            ("iter_buckets", "loop iterations (select to select) by wall time"),
            ("blocked_buckets", "callbacks by time blocked (wall - cpu - waiting for a CPU)"),
        ):
            summed = [
                sum(run.get(key, [0] * len(labels))[i] for run in runs) for i in range(len(labels))
            ]
            print(
                f"{title} (ms, all rounds): "
                + ", ".join(f"{lb}: {n}" for lb, n in zip(labels, summed, strict=True))
            )
        for number, run in enumerate(runs, 1):
            gcs = ", ".join(
                f"gen{gen} x{e['count']} total {e['total_ms']:.1f} max {e['max_ms']:.2f} ms"
                for gen, e in run.get("gc", {}).items()
            )
            sql = ", ".join(
                f"{kind} x{e['count']} total {e['total_ms']:.1f} max {e['max_ms']:.2f} ms"
                for kind, e in run.get("sqlite", {}).items()
            )
            latency = run["loadgen"].get("latency_ms", {})
            print(
                f"round {number}: p99 {latency.get('p99')} max {latency.get('max')} ms;"
                f" longest iteration {run.get('iter_max_ms', 0):.2f} ms; gc: {gcs};"
                f" sqlite: {sql}; threads: {', '.join(run.get('threads', []))}"
            )
            for name, e in list(run.get("blocked", {}).items())[:8]:
                print(
                    f"  blocked over the threshold: {name} x{e['count']}"
                    f" total {e['total_ms']:.1f} max {e['max_ms']:.2f} ms"
                )
            _line_up(run, top)


def _line_up(run: dict[str, Any], top: int) -> None:
    """The bins of slow deliveries with most deliveries, each with what the server did in
    the 100 ms before it (the timeline's epoch times against loadgen's)."""
    bins = run["loadgen"].get("slow_deliveries") or []
    if not bins:
        return
    timeline = run.get("timeline", [])
    total = sum(n for _, n, _ in bins)
    print(f"  slow deliveries: {total} in {len(bins)} bins of 10 ms; the largest bins:")
    for start_ms, count, worst in sorted(bins, key=lambda b: -b[1])[: min(top, 12)]:
        start = start_ms / 1000
        near = [e for e in timeline if start - 0.1 <= e[0] <= start + 0.01]
        what = "; ".join(
            f"{e[1]} {e[5]} wall {e[2]:.1f} cpu {e[3]:.1f} runnable {e[4]:.1f}"
            f" at {1000 * (e[0] - start):+.0f} ms"
            for e in sorted(near, key=lambda e: -e[2])[:4]
        )
        print(
            f"  {time.strftime('%H:%M:%S', time.gmtime(start))}.{start_ms % 1000:03.0f}"
            f" n={count} max {worst:.1f} ms <- {what or 'nothing over the threshold'}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", metavar="OUT", help=argparse.SUPPRESS)
    parser.add_argument("--scenario", choices=["fanout", "fanout-cursors"], default="fanout")
    parser.add_argument("--tree", action="append", default=[], metavar="LABEL=DIR")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--duration", type=float, default=60.0, help="timed seconds")
    parser.add_argument("--rooms", type=int, default=20)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--rate", type=int, default=800, help="keystrokes/s in, all writers")
    parser.add_argument("--awareness", type=float, default=5.0, help="fanout-cursors: Hz")
    parser.add_argument("--scrape", type=float, default=5.0, help="/metrics every S s (0: off)")
    parser.add_argument("--threshold-ms", type=float, default=1.0)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument(
        "--slow-ms",
        type=float,
        default=5.0,
        help="deliveries slower than this are lined up with the server's timeline (0: off)",
    )
    parser.add_argument("--json", type=Path, help="write every round's raw counts here")
    args = parser.parse_args()
    if args.serve:
        return serve(Path(args.serve), args.threshold_ms)
    trees = {"this": REPO} if not args.tree else {}
    for spec in args.tree:
        label, _, folder = spec.partition("=")
        trees[label] = Path(folder).resolve()
    results: dict[str, list[dict[str, Any]]] = {label: [] for label in trees}
    with tempfile.TemporaryDirectory(prefix="loop-turns-") as workdir:
        for round_no in range(args.rounds):
            for label, tree in trees.items():
                run = run_once(label, tree, args, Path(workdir))
                results[label].append(run)
                print(
                    f"round {round_no + 1} {label}: {run['turns']} turns"
                    f" in {run['window_s']:.1f} s,"
                    f" >1 ms {_over(run['buckets'], 1.0)}, >5 ms {_over(run['buckets'], 5.0)}",
                    flush=True,
                )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    report(results, args.threshold_ms, args.top)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
