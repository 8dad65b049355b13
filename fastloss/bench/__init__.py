"""Benchmark engine: fastloss against its peers and against the memory floor.

Shared by ``fastloss bench`` (fastloss/__main__.py), tools/make_benchmarks_md.py
(which writes BENCHMARKS.md) and the pytest-benchmark suites in benchmarks/.
Only NumPy and fastloss are required; each peer is used when it is installed.

Modules, by job:

==============  ==============================================================
losses          one entry per loss (``SPECS``): what every provider needs;
                shape parsing and labels; the arrays of a case (Workload)
providers       what is timed: each provider's call per loss and mode
                (read its docstring for the exact calls), the ISA switch
timing          the timing loop and the tracemalloc peak of one call
environment     CPU model and flags, load average, versions, build
engine          Config, plan (the order of the timings) and run
report          results, and the tables as text, markdown and JSON
progress        the progress line on stderr
==============  ==============================================================

The names below are the engine's interface; import them from here.
"""

from .engine import (
    DEFAULT_THREADS,
    FULL_TIMING,
    MEMORY_PROBES,
    QUICK_TIMING,
    Config,
    plan,
    resolve_isas,
    run,
)
from .environment import cpu_model, cpu_vector_flags, environment, format_load, load_average
from .losses import (
    ARRAY_KINDS,
    DEFAULT_LOSSES,
    FULL_SHAPES,
    LOSSES,
    QUICK_SHAPES,
    SPECS,
    LossSpec,
    Workload,
    canonical_loss,
    canonical_losses,
    floor_label,
    parse_shape,
    shape_id,
    shape_label,
    shapes_for,
)
from .progress import Progress
from .providers import (
    ISA_DEPENDENT,
    ISAS,
    MODES,
    NOT_QUICK,
    PEERS,
    PROVIDERS,
    THREAD_AGNOSTIC,
    Runner,
    Unavailable,
    available_isas,
    installed,
    isa_path,
    make_runner,
    notes,
    unavailable_reason,
)
from .report import Report, Result, Step, format_bytes, format_ratio, format_time
from .timing import Timing, measure, traced_peak

__all__ = [
    "LOSSES", "MODES", "PROVIDERS", "PEERS", "ISAS", "SPECS", "LossSpec", "Config", "Report",
    "Result", "Step", "Unavailable", "Runner", "Workload", "Progress", "Timing",
    "make_runner", "unavailable_reason", "installed", "available_isas", "isa_path",
    "resolve_isas", "measure", "traced_peak", "plan", "run", "environment", "notes",
    "cpu_model", "cpu_vector_flags", "load_average", "format_load", "canonical_loss",
    "canonical_losses", "floor_label", "DEFAULT_LOSSES", "ARRAY_KINDS",
    "parse_shape", "shape_label", "shape_id", "shapes_for", "format_time", "format_bytes",
    "format_ratio", "FULL_SHAPES", "QUICK_SHAPES", "FULL_TIMING", "QUICK_TIMING",
    "DEFAULT_THREADS", "MEMORY_PROBES", "THREAD_AGNOSTIC", "ISA_DEPENDENT", "NOT_QUICK",
]
