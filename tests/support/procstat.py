"""What a child process costs, read from /proc (Linux): resident memory and CPU time."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def rss_bytes(pid: int) -> int:
    """Resident set size (`VmRSS` of /proc/<pid>/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process used so far (/proc/<pid>/stat)."""
    # the command name (field 2) may hold spaces: split after its closing parenthesis
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def status_kib(pid: int, field: str) -> int:
    """A `Vm*` field of /proc/<pid>/status in KiB (`VmRSS`, `VmHWM` the peak)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for process {pid}")


def reset_peak(pid: int) -> None:
    """Reset `VmHWM` to the current RSS (clear_refs 5), so that a peak shows even when it
    stays below an earlier one (start-up)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def cpu_ns(pid: int) -> int:
    """Time on CPU of all the process's threads in ns (schedstat: finer than clock ticks)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):  # a thread ended
            total += int((task / "schedstat").read_text().split()[0])
    return total
