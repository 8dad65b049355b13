"""Thread count used by fastloss's OpenMP kernels.

Three things decide how many threads a kernel runs on:

1. fastloss's own setting, ``set_num_threads(n)`` / ``threads(n)``. The default
   is ``OMP_NUM_THREADS`` (its first level) when set, else the number of CPUs
   this process may use (its affinity mask and its cgroup's CPU quota), and
   never more than that number of CPUs. Once ``fastloss.torch`` is imported,
   the default is ``torch.get_num_threads()`` instead (read at every call),
   until ``set_num_threads`` or ``threads`` sets fastloss's own count.
2. The OpenMP runtime's own limit for the calling thread,
   ``omp_get_max_threads()``, which ``OMP_NUM_THREADS``, ``omp_set_num_threads``
   and threadpoolctl's ``threadpool_limits`` set. ``fl_run_blocks``
   (src/runtime.c) runs the smaller of the two (and no more threads than
   blocks), so ``threadpool_limits(1)`` caps fastloss as it caps NumPy's BLAS.
3. Fork. GNU libgomp cannot run a parallel region in a child forked from a
   process whose thread pool had started: the child waits forever for pool
   threads that fork did not copy. fastloss cannot tell whether the pool had
   started, so any child forked from a process that uses libgomp runs fastloss
   on one thread (a kernel on one thread never enters an OpenMP region), and
   ``set_num_threads`` there warns and keeps it at one. Start workers with the
   'spawn' or 'forkserver' method to use several threads in them. LLVM's and
   Intel's runtimes reinitialise themselves after fork and are not restricted.

4. Contention. On a busy machine a thread of the team may start a scheduler
   time slice late, and a parallel call then takes many times its one-thread
   time. The kernels notice it (the calling thread waited at the end of the
   region longer than half the work it did) and run the following calls on the
   calling thread for a while (50 ms, doubling per further stall up to 2 s),
   then try the team again; a quiet machine keeps its threads.
   ``set_adaptive_threads(False)`` (or ``FASTLOSS_ADAPTIVE_THREADS=0``) turns
   that off.

Results never depend on the thread count (every kernel reduces fixed blocks in
a fixed order), so none of this changes a single bit of output.
"""

import contextlib
import ctypes
import math
import operator
import os
import warnings

from . import _core

__all__ = ["get_num_threads", "set_num_threads", "threads", "set_adaptive_threads"]


# --------------------------------------------------------------------------
# CPUs available to this process.

def _read_quota_v2(path):
    """CPUs allowed by a cgroup v2 ``cpu.max`` ("max 100000" or "200000 100000")."""
    with open(path) as f:
        quota, period = f.read().split()[:2]
    return None if quota == "max" else int(quota) / int(period)


def _read_quota_v1(folder):
    """CPUs allowed by a cgroup v1 ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` pair."""
    with open(os.path.join(folder, "cpu.cfs_quota_us")) as f:
        quota = int(f.read())
    with open(os.path.join(folder, "cpu.cfs_period_us")) as f:
        period = int(f.read())
    return quota / period if quota > 0 and period > 0 else None


def _cgroup_cpu_quota(proc_cgroup="/proc/self/cgroup", root="/sys/fs/cgroup"):
    """The smallest CPU quota (in CPUs, maybe fractional) on this process's cgroup path.

    Reads the process's cgroup from `proc_cgroup` and the quota of that cgroup
    and each ancestor (a limit on a parent binds the child too) under `root`:
    cgroup v2 (``cpu.max``, at `root` or, on hybrid hosts, `root`/unified) and
    v1 (``cpu.cfs_quota_us`` under the cpu controller's mount). A path that does
    not exist under the mount (a container that sees its host's cgroup path
    but has its own cgroup mounted at `root`) falls back to the mount itself.
    None when there is no limit or nothing can be read.
    """
    try:
        with open(proc_cgroup) as f:
            entries = [line.split(":", 2) for line in f.read().splitlines()]
    except OSError:
        return None
    found = []

    def visit(mount, path, read):
        parts = [p for p in path.split("/") if p]
        for depth in range(len(parts), -1, -1):
            folder = os.path.join(mount, *parts[:depth])
            try:
                quota = read(folder)
            except (OSError, ValueError):
                continue
            if quota is not None:
                found.append(quota)

    for entry in entries:
        if len(entry) != 3:
            continue
        hierarchy, controllers, path = entry
        if hierarchy == "0" and controllers == "":
            for mount in (root, os.path.join(root, "unified")):
                visit(mount, path, lambda d: _read_quota_v2(os.path.join(d, "cpu.max")))
        elif "cpu" in controllers.split(","):
            for name in dict.fromkeys((controllers, "cpu,cpuacct", "cpu")):
                visit(os.path.join(root, name), path, _read_quota_v1)
    return min(found) if found else None


def _available_cpus():
    """CPUs this process may run on: its affinity mask, capped by its cgroup CPU quota."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    quota = _cgroup_cpu_quota()
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


# --------------------------------------------------------------------------
# The OpenMP runtime fastloss calls.

_OPENMP_SPECS = {200505: "2.5", 200805: "3.0", 201107: "3.1", 201307: "4.0",
                 201511: "4.5", 201811: "5.0", 202011: "5.1", 202111: "5.2",
                 202411: "6.0"}


def _library_at(address):
    """Path of the shared library that contains `address` (dladdr / GetModuleHandleEx)."""
    if not address:
        return None
    try:
        if os.name == "nt":
            from ctypes import wintypes

            kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
            kernel32.GetModuleHandleExW.argtypes = [wintypes.DWORD, ctypes.c_void_p,
                                                    ctypes.POINTER(wintypes.HMODULE)]
            handle = wintypes.HMODULE()
            # FROM_ADDRESS (4) | UNCHANGED_REFCOUNT (2)
            if not kernel32.GetModuleHandleExW(6, address, ctypes.byref(handle)):
                return None
            buf = ctypes.create_unicode_buffer(32768)
            n = kernel32.GetModuleFileNameW(handle, buf, len(buf))
            return buf.value if n else None

        class DlInfo(ctypes.Structure):
            _fields_ = [("dli_fname", ctypes.c_char_p), ("dli_fbase", ctypes.c_void_p),
                        ("dli_sname", ctypes.c_char_p), ("dli_saddr", ctypes.c_void_p)]

        dladdr = getattr(ctypes.CDLL(None), "dladdr", None)
        if dladdr is None:  # before glibc 2.34 it lives in libdl
            from ctypes.util import find_library

            libdl = find_library("dl")
            dladdr = getattr(ctypes.CDLL(libdl), "dladdr", None) if libdl else None
        if dladdr is None:
            return None
        dladdr.argtypes = [ctypes.c_void_p, ctypes.POINTER(DlInfo)]
        info = DlInfo()
        if not dladdr(address, ctypes.byref(info)) or not info.dli_fname:
            return None
        return os.path.realpath(os.fsdecode(info.dli_fname))
    except (OSError, AttributeError, ValueError, TypeError):
        return None


def openmp_runtime():
    """What OpenMP runtime fastloss's kernels call, as a dict.

    ``spec``: the OpenMP version the kernels were compiled for (from the
    ``_OPENMP`` macro, e.g. "4.5"), None for a serial build; ``library``: the
    file of the runtime that ``omp_*`` calls resolve to in this process (the
    copy bundled in the wheel, the system's, or another package's copy that was
    loaded first), None when unknown; ``name``: "GNU libgomp", "LLVM libomp",
    "Intel libiomp", "Microsoft vcomp" or "unknown"; ``max_threads``:
    ``omp_get_max_threads()`` for the calling thread.
    """
    macro = _core.openmp_spec()
    library = _library_at(_core._omp_symbol_address()) if macro else None
    base = os.path.basename(library or "").lower()
    name = "unknown"
    for prefix, label in (("libgomp", "GNU libgomp"), ("libiomp", "Intel libiomp"),
                          ("libomp", "LLVM libomp"), ("vcomp", "Microsoft vcomp")):
        if base.startswith(prefix):
            name = label
            break
    return {
        "spec": _OPENMP_SPECS.get(macro, str(macro)) if macro else None,
        "macro": macro,
        "library": library,
        "name": name if macro else None,
        "max_threads": _core.omp_max_threads(),
    }


# --------------------------------------------------------------------------
# The setting.

_num_threads = _default_num_threads()
# Set in a child forked from this process when the runtime cannot survive fork.
_serial_after_fork = False
# True once set_num_threads (or threads, while it lasts) chose the count.
_explicit = False
# A host library's thread count to follow while the count is not explicit: a
# callable returning an int (fastloss.torch sets torch.get_num_threads), or None.
_follow = None
_warned_after_fork = False


def _fork_unsafe_runtime():
    """True when the OpenMP runtime is GNU libgomp (or cannot be identified)."""
    rt = openmp_runtime()
    return rt["macro"] != 0 and rt["name"] in ("GNU libgomp", "unknown")


_FORK_UNSAFE = _fork_unsafe_runtime()


def _after_fork_in_child():
    global _num_threads, _serial_after_fork
    _num_threads = 1
    _serial_after_fork = True


if _FORK_UNSAFE and hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def get_num_threads():
    """Number of threads fastloss's kernels use for large inputs.

    OpenMP's own limit for the calling thread (``OMP_NUM_THREADS``,
    ``omp_set_num_threads``, threadpoolctl's ``threadpool_limits``) caps it
    further when smaller. One in a child forked from a process using GNU libgomp.
    After ``import fastloss.torch``, and until this process calls
    ``set_num_threads``, it is ``torch.get_num_threads()``.
    """
    if _serial_after_fork:
        return 1
    if _follow is not None and not _explicit:
        n = _follow()
        return n if n >= 1 else 1
    return _num_threads


def _follow_host_threads(source):
    """Make the default thread count `source()` (a callable returning an int),
    read at every call, until set_num_threads() is called. fastloss.torch
    passes torch.get_num_threads, so that inside a PyTorch program fastloss
    runs on torch's intra-op thread count unless told otherwise."""
    global _follow
    _follow = source


_MAX_THREADS = 2**31 - 1   # the kernels take the thread count as a C int


def set_num_threads(n):
    """Set the number of threads fastloss's kernels use (an int >= 1; values
    beyond the CPUs available are capped by OpenMP when a kernel runs).

    Results do not depend on it: every kernel reduces in a fixed block order,
    so any thread count gives bitwise-identical output. Returns the previous value.

    In a child forked from a process that uses GNU libgomp, ``n > 1`` gives a
    RuntimeWarning (once) and fastloss stays on one thread: libgomp cannot
    start threads there (see the module notes).
    """
    global _num_threads, _warned_after_fork, _explicit
    try:
        n = operator.index(n)
    except TypeError:
        raise TypeError(f"n must be an integer, got {type(n).__name__}") from None
    if not 1 <= n <= _MAX_THREADS:
        raise ValueError(f"n must be between 1 and {_MAX_THREADS} (a C int), got {n}")
    if _serial_after_fork and n > 1:
        if not _warned_after_fork:
            _warned_after_fork = True
            warnings.warn(
                "fastloss: this process was forked from one using GNU libgomp, which cannot "
                "run threads after fork; fastloss stays on 1 thread here (start workers with "
                "the 'spawn' or 'forkserver' method to use several)", RuntimeWarning,
                stacklevel=2)
        n = 1
    previous = get_num_threads()
    _num_threads, _explicit = n, True
    return previous


@contextlib.contextmanager
def threads(n):
    """Context manager: run the enclosed fastloss calls with `n` threads."""
    global _num_threads, _explicit
    saved = _num_threads, _explicit
    set_num_threads(n)
    try:
        yield
    finally:
        _num_threads, _explicit = saved


def set_adaptive_threads(on):
    """Whether a parallel call that stalled on a busy machine sends the next
    calls to one thread for a while (the default, True; see the module notes).
    False: every call uses the threads it is given. Results do not depend on it."""
    _core.set_adaptive_threads(flag_value(on))


def flag_value(on):
    if not isinstance(on, (bool, int)):
        raise TypeError(f"on must be True or False, got {type(on).__name__}")
    return bool(on)


_core.set_adaptive_threads(os.environ.get("FASTLOSS_ADAPTIVE_THREADS", "1").strip() != "0")
