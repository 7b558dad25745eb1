"""How many jobs this machine can run at once: the local cap on a Map state's parallel iterations.

On AWS every trial of a sweep gets its own instance, so MaxConcurrency alone bounds a Map. Locally the jobs
share this machine's cores and memory, so the executor also caps the iterations running at once: by the
setting ``NYANOPS_MAX_PARALLEL_JOBS`` when it is set, otherwise from the machine (one job per
``CORES_PER_JOB`` cores and ``MEMORY_PER_JOB`` bytes of memory, and at least one).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ENV_VAR = "NYANOPS_MAX_PARALLEL_JOBS"
CORES_PER_JOB = 4
MEMORY_PER_JOB = 6 * 2**30
GIB = 2**30


class InvalidSetting(ValueError):
    """A setting in the environment has a value nyanops cannot use; the message says what to set instead."""


@dataclass(frozen=True)
class Machine:
    """The CPU cores this process may use and the memory it may use, in bytes."""

    cores: int
    memory: int

    def job_slots(self) -> int:
        """One job per CORES_PER_JOB cores and MEMORY_PER_JOB of memory, and at least one."""
        return max(1, min(self.cores // CORES_PER_JOB, self.memory // MEMORY_PER_JOB))

    def describe(self) -> str:
        return f"{self.cores} CPU cores and {self.memory / GIB:.0f} GiB of memory"


def this_machine(cgroup: Path = Path("/sys/fs/cgroup")) -> Machine:
    """This process's share of the machine: its CPU affinity and physical memory, lowered by cgroup v2 limits
    (containers) where there are any."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    quota = (_read(cgroup / "cpu.max") or "").split()  # "<quota> <period>", or "max <period>" for no limit
    if len(quota) == 2 and quota[0].isdigit() and quota[1].isdigit() and int(quota[1]) > 0:
        cores = min(cores, max(1, int(quota[0]) // int(quota[1])))
    limit = _read(cgroup / "memory.max")  # bytes or "max"
    if limit and limit.isdigit():
        memory = min(memory, int(limit))
    return Machine(max(1, cores), memory)


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None


def max_parallel_jobs(env: Mapping[str, str] | None = None, machine: Machine | None = None) -> int:
    """The local cap: ``NYANOPS_MAX_PARALLEL_JOBS`` if set (a positive integer), else this machine's job slots.

    Raises InvalidSetting (field / problem / fix) for a value that is not a positive integer.
    """
    env = os.environ if env is None else env
    raw = env.get(ENV_VAR, "").strip()
    if not raw:
        return (machine or this_machine()).job_slots()
    if not raw.isdigit() or int(raw) < 1:
        machine = machine or this_machine()
        raise InvalidSetting(
            f"{ENV_VAR}: {raw!r} is not a positive whole number of jobs; "
            f"set it to 1 or more, or unset it to use {machine.job_slots()} "
            f"(computed from this machine's {machine.describe()})"
        )
    return int(raw)
