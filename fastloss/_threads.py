"""Thread count used by fastloss's OpenMP kernels."""

import contextlib
import math
import operator
import os

__all__ = ["get_num_threads", "set_num_threads", "threads"]


def _available_cpus():
    """CPUs this process may run on: affinity mask, then cgroup v2/v1 CPU quota."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    quota = None
    try:
        with open("/sys/fs/cgroup/cpu.max") as f:  # cgroup v2: "max 100000" or "200000 100000"
            q, p = f.read().split()[:2]
            if q != "max":
                quota = int(q) / int(p)
    except (OSError, ValueError):
        try:
            with open("/sys/fs/cgroup/cpu/cpu.cfs_quota_us") as f:
                q = int(f.read())
            with open("/sys/fs/cgroup/cpu/cpu.cfs_period_us") as f:
                p = int(f.read())
            if q > 0 and p > 0:
                quota = q / p
        except (OSError, ValueError):
            pass
    if quota is not None:
        n = min(n, max(1, math.ceil(quota)))
    return max(1, n)


def _default_num_threads():
    """OMP_NUM_THREADS when set (its first level), capped at the CPUs available."""
    cpus = _available_cpus()
    env = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    try:
        requested = int(env)
    except ValueError:
        requested = 0
    return min(requested, cpus) if requested > 0 else cpus


_num_threads = _default_num_threads()


def get_num_threads():
    """Number of threads fastloss's kernels use for large inputs."""
    return _num_threads


def set_num_threads(n):
    """Set the number of threads fastloss's kernels use (an int >= 1).

    Results do not depend on it: every kernel reduces in a fixed block order,
    so any thread count gives bitwise-identical output. Returns the previous value.
    """
    global _num_threads
    try:
        n = operator.index(n)
    except TypeError:
        raise TypeError(f"n must be an integer, got {type(n).__name__}") from None
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    previous, _num_threads = _num_threads, n
    return previous


@contextlib.contextmanager
def threads(n):
    """Context manager: run the enclosed fastloss calls with `n` threads."""
    previous = set_num_threads(n)
    try:
        yield
    finally:
        set_num_threads(previous)
