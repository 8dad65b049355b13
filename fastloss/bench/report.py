"""The results of a run and their tables, as text (``fastloss bench``) and
markdown (tools/make_benchmarks_md.py), and as JSON (``--json``).

One table per loss and shape: a row per mode, thread count and (when the run
timed several) ISA path, with fastloss's time, the floor, fastloss over the
floor, fastloss allocating its gradient, and each peer's time with fastloss's
speed-up over it.
"""

import math
from dataclasses import dataclass, field

from .losses import floor_bytes_per_element, floor_label, shape_label
from .providers import ISA_DEPENDENT, PEERS, notes

SCHEMA = "fastloss-bench/2"   # 2: results carry the ISA path; config.isas; load averages


def format_time(seconds):
    """Seconds as a short string with 3 significant digits and a unit."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9)):
        if seconds >= scale or unit == "ns":
            v = seconds / scale
            return f"{v:.3g} {unit}" if v < 100 else f"{v:.0f} {unit}"


def format_bytes(n):
    """Bytes as '1.5 MiB'; None as '-'."""
    if n is None:
        return "-"
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def format_ratio(x):
    """A speed-up with 2 or 3 significant digits: 0.52x, 3.4x, 12.5x, 140x."""
    return f"{x:.0f}x" if x >= 100 else f"{x:.1f}x" if x >= 1 else f"{x:.2f}x"


@dataclass
class Step:
    """One timing: threads is None for thread-agnostic providers, mode is None for
    the floor, isa is None for the providers that do not run fastloss's kernels."""

    loss: str
    shape: tuple
    mode: object
    threads: object
    provider: str
    isa: object = None

    def label(self):
        """'cross_entropy 4096x1000 fused fastloss[avx2] 2t'."""
        parts = [self.loss, shape_label(self.shape)]
        if self.mode:
            parts.append(self.mode)
        parts.append(self.provider + (f"[{self.isa}]" if self.isa else ""))
        if self.threads is not None:
            parts.append(f"{self.threads}t")
        return " ".join(parts)


@dataclass
class Result(Step):
    """A Step with what its timing gave: the median and every loop's seconds per
    call, the iterations per loop, or why it did not run."""

    median_s: object = None
    samples_s: list = field(default_factory=list)
    number: int = 0
    error: object = None

    def to_dict(self):
        return {"loss": self.loss, "shape": list(self.shape),
                "shape_label": shape_label(self.shape), "mode": self.mode,
                "threads": self.threads, "provider": self.provider, "isa": self.isa,
                "median_s": self.median_s, "samples_s": self.samples_s,
                "iterations": self.number, "error": self.error}


class Report:
    """The results of a run, with lookups and table formatting."""

    def __init__(self, config, env, results=(), memory=None, elapsed_s=None, command=None):
        self.config, self.env = config, env
        self.results = list(results)
        self.memory = memory if memory is not None else {}   # (loss, shape) -> {label: bytes}
        self.elapsed_s, self.command = elapsed_s, command
        self._index = {}
        for r in self.results:
            self._add(r)

    def _add(self, r):
        self._index[(r.loss, tuple(r.shape), r.mode, r.threads, r.provider, r.isa)] = r

    def add(self, r):
        self.results.append(r)
        self._add(r)

    @property
    def isas(self):
        """The ISA paths fastloss was timed on, the default (first) one first."""
        return tuple(self.config.isas) or (None,)

    def time(self, loss, shape, mode, threads, provider, isa=None):
        """Median seconds of a provider in a case; thread-agnostic providers and the
        floor answer for every thread count and mode. fastloss's providers answer
        for ISA path `isa` (None: the run's first path). None when not measured."""
        shape = tuple(shape)
        isa = (isa or self.isas[0]) if provider in ISA_DEPENDENT else None
        for key in ((loss, shape, mode, threads, provider, isa),
                    (loss, shape, mode, None, provider, isa),
                    (loss, shape, None, None, provider, isa)):
            r = self._index.get(key)
            if r is not None:
                return r.median_s
        return None

    def to_dict(self):
        mem = [{"loss": loss, "shape": list(shape), "shape_label": shape_label(shape),
                "traced_peak_bytes": probes}
               for (loss, shape), probes in self.memory.items()]
        return {"schema": SCHEMA, "command": self.command, "environment": self.env,
                "config": self.config.to_dict(), "notes": notes(self.config.providers),
                "elapsed_s": self.elapsed_s,
                "results": [r.to_dict() for r in self.results], "memory": mem}

    # ---- tables ----------------------------------------------------------

    def _peer_columns(self, loss, shape):
        return [p for p in PEERS if p in self.config.providers
                and any(r.provider == p and r.median_s is not None and r.loss == loss
                        and tuple(r.shape) == tuple(shape) for r in self.results)]

    def _label_columns(self):
        return ["mode", "threads"] + (["isa"] if len(self.isas) > 1 else [])

    def table_rows(self, loss, shape):
        """(header, rows) of one loss and shape; cells are strings."""
        peers = self._peer_columns(loss, shape)
        alloc = "fastloss_alloc" in self.config.providers
        labels = self._label_columns()
        header = labels + ["fastloss", "floor", "/floor"]
        if alloc:
            header.append("out=None")
        header += [f"{p} (speed-up)" for p in peers]
        rows = []
        floor = self.time(loss, shape, None, None, "floor")
        for mode in self.config.modes:
            for n in self.config.threads:
                for isa in self.isas:
                    t = self.time(loss, shape, mode, n, "fastloss", isa)
                    if t is None:
                        continue
                    row = [mode, str(n)] + ([isa] if "isa" in labels else [])
                    row += [format_time(t), format_time(floor),
                            f"{t / floor:.2f}x" if floor else "-"]
                    if alloc:
                        ta = self.time(loss, shape, mode, n, "fastloss_alloc", isa)
                        row.append(format_time(ta) if ta else "-")
                    for p in peers:
                        tp = self.time(loss, shape, mode, n, p)
                        row.append(f"{format_time(tp)} ({format_ratio(tp / t)})" if tp else "-")
                    rows.append(row)
        return header, rows

    def isa_note(self, markdown=False):
        """Which ISA path(s) fastloss ran on, for a table's title."""
        q = "`" if markdown else ""
        if len(self.isas) > 1:
            return ("fastloss on ISA paths " + ", ".join(f"{q}{i}{q}" for i in self.isas)
                    + " (column isa)")
        return f"fastloss on ISA path {q}{self.isas[0] or 'unknown'}{q}"

    def title(self, loss, shape, markdown=False):
        """What the table is of, the floor with its bandwidth, and the ISA path."""
        floor = self.time(loss, shape, None, None, "floor")
        n = math.prod(shape)
        traffic = floor_bytes_per_element(loss) * n  # bytes read + written
        bw = f", {traffic / floor / 1e9:.1f} GB/s" if floor else ""
        q = "`" if markdown else ""
        text = (f"float32, {n:,} elements; floor = {q}{floor_label(loss)}{q}: "
                f"{format_time(floor)}{bw}; {self.isa_note(markdown)}")
        return text[0].upper() + text[1:] + "." if markdown else (
            f"{loss} {shape_label(shape)}: {text}")

    def memory_line(self, loss, shape):
        """The tracemalloc peaks of one loss and shape, or None when not measured."""
        probes = self.memory.get((loss, tuple(shape)))
        if not probes:
            return None
        grad = 4 * math.prod(shape)
        parts = [f"{label} {format_bytes(b)}" for label, b in probes.items()]
        return (f"memory allocated by one call (tracemalloc peak; the gradient is "
                f"{format_bytes(grad)}): " + ", ".join(parts)
                + "; torch and jax allocate outside tracemalloc's view")

    def format_text(self, loss, shape):
        """One loss and shape as an aligned plain-text table."""
        header, rows = self.table_rows(loss, shape)
        widths = [max(len(c) for c in col) for col in zip(header, *rows)]
        n_labels = len(self._label_columns())

        def line(cells):  # labels left-aligned, numbers right-aligned
            return "  ".join(c.rjust(w) if i >= n_labels else c.ljust(w)
                             for i, (c, w) in enumerate(zip(cells, widths)))

        out = [self.title(loss, shape), line(header), line(["-" * w for w in widths])]
        out += [line(row) for row in rows]
        mem = self.memory_line(loss, shape)
        if mem:
            out.append(mem)
        return "\n".join(out)

    def format_markdown(self, loss, shape, level=3):
        """One loss and shape as a markdown section: heading, title, table, memory."""
        header, rows = self.table_rows(loss, shape)
        n_labels = len(self._label_columns())
        out = [f"{'#' * level} {loss} {shape_label(shape)}", "",
               self.title(loss, shape, markdown=True), "",
               "| " + " | ".join(header) + " |",
               "|" + "|".join(["---"] * n_labels + ["---:"] * (len(header) - n_labels)) + "|"]
        out += ["| " + " | ".join(row) + " |" for row in rows]
        mem = self.memory_line(loss, shape)
        if mem:
            out += ["", mem[0].upper() + mem[1:] + "."]
        return "\n".join(out)

    def cases(self):
        """(loss, shape) pairs with results, in run order."""
        return list(dict.fromkeys((r.loss, tuple(r.shape)) for r in self.results))
