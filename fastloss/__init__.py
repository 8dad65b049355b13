"""fastloss: fused, numerically stable loss-and-gradient kernels for float32 NumPy arrays.

The functions and classes keep PyTorch's names, arguments, defaults and
semantics (``fastloss.cross_entropy`` is ``torch.nn.functional.cross_entropy``),
so code ports by changing an import. The loss classes add ``loss_and_grad``
(loss and gradient from one fused kernel call) and ``backward``.
"""

import os as _os

from . import _api, _pairwise
from . import _core as _core
from . import reference as reference
from ._api import *  # noqa: F403  (the losses: functions and classes, from fastloss/_spec/)
from ._embedding import (
    CosineEmbeddingLoss,
    TripletMarginLoss,
    cosine_embedding_loss,
    triplet_margin_loss,
)
from ._linear_ce import LinearCrossEntropyLoss, linear_cross_entropy
from ._pairwise import *  # noqa: F403  (losses of several inputs: fastloss/_pairwise.py)
from ._threads import get_num_threads, set_adaptive_threads, set_num_threads, threads
from ._version import __version__

__all__ = [
    *_api.__all__,
    "linear_cross_entropy",
    "LinearCrossEntropyLoss",
    "cosine_embedding_loss",
    "CosineEmbeddingLoss",
    "triplet_margin_loss",
    "TripletMarginLoss",
    "openmp_enabled",
    "get_num_threads",
    "set_num_threads",
    "set_adaptive_threads",
    "threads",
    "isa",
    "show_config",
    "reference",
    "__version__",
    *_pairwise.__all__,
]


def openmp_enabled():
    """True when the C kernels were compiled with OpenMP (and can use several threads)."""
    return _core.openmp_enabled()


def isa():
    """Name of the instruction-set path the kernels run on ('baseline', 'avx2', 'avx512')."""
    return _core.isa_name()


def _select_isa_from_env():
    want = _os.environ.get("FASTLOSS_ISA", "auto").strip().lower() or "auto"
    try:
        _core.set_isa(want)
    except ValueError:
        import warnings

        warnings.warn(f"FASTLOSS_ISA={want!r} is not available here; using "
                      f"{_core.isa_name()!r}", RuntimeWarning, stacklevel=2)
        _core.set_isa("auto")


_select_isa_from_env()


def build_info():
    """The compiler, flags and instruction sets this build used (a dict)."""
    import json

    path = _os.path.join(_os.path.dirname(__file__), "_build_info.json")
    try:
        with open(path) as f:
            return json.load(f)
    except OSError:
        return {}


def show_config(file=None):
    """Print the version, build, OpenMP runtime, threads, dispatch path and NumPy version.

    The OpenMP runtime line names the library file that fastloss's ``omp_*``
    calls resolve to in this process: the copy bundled in a wheel
    (``fastloss.libs/``), the system's, or another package's that was loaded first.
    """
    import platform
    import sys

    import numpy

    from . import _threads

    info = build_info()
    rt = _threads.openmp_runtime()
    if rt["spec"]:
        omp = (f"enabled, OpenMP {rt['spec']} (_OPENMP {rt['macro']}), flags "
               f"{' '.join(info.get('openmp_flags', [])) or 'unknown'}")
        runtime = f"{rt['name']}, {rt['library'] or 'library file not identified'}"
    else:
        omp, runtime = "DISABLED (serial build)", "none"
    threads = (f"{get_num_threads()} (OpenMP limit {rt['max_threads']}, "
               f"{_threads._available_cpus()} CPUs available)")
    if _threads._serial_after_fork:
        threads += "; serial: forked from a process using GNU libgomp"
    lines = [
        f"fastloss {__version__}",
        f"  python:         {sys.version.split()[0]} ({platform.platform()})",
        f"  numpy:          {numpy.__version__} (built against {info.get('numpy_build', '?')})",
        f"  openmp:         {omp}",
        f"  openmp runtime: {runtime}",
        f"  threads:        {threads}",
        f"  isa in use:     {isa()}",
        f"  isas compiled:  {', '.join(info.get('isas', {})) or 'unknown'}",
        f"  compiler:       {info.get('compiler', 'unknown')}",
        f"  compile flags:  {' '.join(info.get('compile_flags', []))}",
    ]
    print("\n".join(lines), file=file or sys.stdout)
