"""The machine and software a run is reported with.

CPU model and vector flags (from /proc/cpuinfo where there is one), CPUs
available to the process, the load average, fastloss's build and ISA paths,
and the versions of NumPy and of the peer libraries; as a JSON-able dict.
"""

import datetime
import importlib.metadata
import os
import platform
import sys

import numpy as np

import fastloss

from .providers import PROVIDERS, available_isas

# The vector extensions the kernels may use, as /proc/cpuinfo names them.
_VECTOR_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512dq")


def _cpuinfo_field(*names):
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith(names):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_model():
    """The CPU's model name, or the best that the platform module knows."""
    return (_cpuinfo_field("model name", "cpu model", "hardware")
            or platform.processor() or platform.machine() or "unknown")


def cpu_vector_flags():
    """The vector extensions the kernels may use that this CPU reports (x86 /proc/cpuinfo)."""
    flags = set((_cpuinfo_field("flags") or "").split())
    return [f for f in _VECTOR_FLAGS if f in flags]


def cpus_available():
    """The CPUs this process may run on (its affinity mask), or the CPU count."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count()


def load_average():
    """The 1, 5 and 15-minute load averages as a list, or None where unknown."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def format_load(load):
    """[0.5, 0.25, 0.1] -> '0.50/0.25/0.10'; None -> 'unknown'."""
    return "/".join(f"{v:.2f}" for v in load) if load else "unknown"


def _version(dist):
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def environment(providers=PROVIDERS):
    """Machine, library versions and thread settings, as a JSON-able dict."""
    torch = any(p in providers for p in ("torch", "torch_compile"))
    env = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu_model": cpu_model(),
        "cpu_vector_flags": cpu_vector_flags(),
        "cpu_count": os.cpu_count(),
        "cpus_available": cpus_available(),
        "load_average": load_average(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "fastloss": {
            "version": fastloss.__version__,
            "path": os.path.dirname(os.path.abspath(fastloss.__file__)),
            "isa": fastloss.isa(),
            "isas_available": available_isas(),
            "openmp": fastloss.openmp_enabled(),
            "default_threads": fastloss.get_num_threads(),
            "build": fastloss.build_info(),
        },
        "torch": _version("torch") if torch else None,
        "jax": _version("jax") if "jax" in providers else None,
        "jaxlib": _version("jaxlib") if "jax" in providers else None,
        "sklearn": _version("scikit-learn") if "sklearn" in providers else None,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "fastloss_isa_env": os.environ.get("FASTLOSS_ISA"),
    }
    if env["torch"] and "torch" in sys.modules:
        env["torch_default_threads"] = sys.modules["torch"].get_num_threads()
    return env
