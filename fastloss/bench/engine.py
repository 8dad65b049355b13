"""A benchmark run: what to run (:class:`Config`), in which order (:func:`plan`),
and running it (:func:`run`), which returns a :class:`~fastloss.bench.report.Report`.

Per loss and shape the floor is timed first; then for each mode and thread
count every provider side by side (fastloss once per ISA path of the run),
so that the ratios in a row were measured minutes apart at most, under the
same load. The load average is recorded before and after the run.
"""

import time
from dataclasses import dataclass

import fastloss

from .environment import environment, load_average
from .losses import (
    DEFAULT_LOSSES,
    FULL_SHAPES,
    QUICK_SHAPES,
    Workload,
    canonical_losses,
    shape_label,
    shapes_for,
)
from .progress import Progress
from .providers import (
    ISA_DEPENDENT,
    ISAS,
    MODES,
    NOT_QUICK,
    PROVIDERS,
    THREAD_AGNOSTIC,
    Unavailable,
    available_isas,
    isa_path,
    make_runner,
    unavailable_reason,
)
from .report import Report, Result, Step
from .timing import measure, traced_peak

DEFAULT_THREADS = (1, 2)
FULL_TIMING = {"repeats": 5, "min_time": 0.1}
QUICK_TIMING = {"repeats": 3, "min_time": 0.01}
PAUSE_BETWEEN_PROVIDERS_S = 0.01

# What the memory line reports: (label, provider, mode).
MEMORY_PROBES = (
    ("fastloss fused out=buf", "fastloss", "fused"),
    ("fastloss fused out=None", "fastloss_alloc", "fused"),
    ("fastloss forward", "fastloss", "forward"),
    ("reference fused", "reference", "fused"),
)


def resolve_isas(names):
    """ISA path names as given (--isa) -> a tuple of available paths, no repeats.

    'default' is the path in use (``fastloss.isa()``, which FASTLOSS_ISA sets);
    'all' is every path this build and CPU run. None or empty: the default alone.
    """
    available = available_isas()
    out = []
    for name in names or ["default"]:
        name = name.strip().lower()
        if name == "default":
            out.append(fastloss.isa())
        elif name == "all":
            out += available
        elif name not in ISAS:
            raise ValueError(f"unknown ISA path {name!r}; choose from "
                             f"{', '.join(ISAS)}, default, all")
        elif name not in available:
            raise ValueError(f"ISA path {name!r} is not available here (this build and CPU "
                             f"run {', '.join(available)})")
        else:
            out.append(name)
    return tuple(dict.fromkeys(out))


@dataclass
class Config:
    """What to run. Build with Config.make(...) to get defaults and checks."""

    losses: tuple
    shapes: dict            # loss -> list of shape tuples
    modes: tuple
    threads: tuple
    providers: tuple
    repeats: int
    min_time: float
    memory: bool = True
    seed: int = 0
    quick: bool = False
    isas: tuple = ()        # ISA paths fastloss is timed on; the first is the default

    @classmethod
    def make(cls, losses=None, shapes=None, modes=None, threads=None, providers=None,
             repeats=None, min_time=None, memory=True, quick=False, seed=0, isas=None):
        losses = canonical_losses(losses) if losses else DEFAULT_LOSSES
        if shapes is None:
            table = QUICK_SHAPES if quick else FULL_SHAPES
            by_loss = {loss: list(table[loss]) for loss in losses}
        else:
            by_loss = shapes_for(losses, [tuple(s) for s in shapes])
        modes = tuple(dict.fromkeys(modes or MODES))
        for m in modes:
            if m not in MODES:
                raise ValueError(f"unknown mode {m!r}; choose from {', '.join(MODES)}")
        threads = tuple(dict.fromkeys(int(n) for n in (threads or DEFAULT_THREADS)))
        if min(threads) < 1:
            raise ValueError("thread counts must be >= 1")
        if not providers:
            providers = [p for p in PROVIDERS if not (quick and p in NOT_QUICK)]
        providers = tuple(dict.fromkeys(providers))
        for p in providers:
            if p not in PROVIDERS:
                raise ValueError(f"unknown provider {p!r}; choose from {', '.join(PROVIDERS)}")
        if "fastloss" not in providers:
            providers = ("fastloss",) + providers
        if "floor" not in providers:
            providers = providers + ("floor",)
        timing = QUICK_TIMING if quick else FULL_TIMING
        return cls(losses, by_loss, modes, threads, providers,
                   int(repeats or timing["repeats"]),
                   float(min_time if min_time is not None else timing["min_time"]),
                   memory, seed, quick, resolve_isas(isas))

    def to_dict(self):
        return {"losses": list(self.losses),
                "shapes": {k: [list(s) for s in v] for k, v in self.shapes.items()},
                "modes": list(self.modes), "threads": list(self.threads),
                "providers": list(self.providers), "repeats": self.repeats,
                "min_time_s": self.min_time, "memory": self.memory, "seed": self.seed,
                "quick": self.quick, "isas": list(self.isas)}


def plan(config):
    """The timings of a run, in order: per loss and shape, the floor, then for
    each mode and thread count every provider side by side (fastloss's
    providers once per ISA path)."""
    steps = []
    isas = config.isas or (None,)
    for loss in config.losses:
        for shape in config.shapes[loss]:
            steps.append(Step(loss, shape, None, None, "floor"))
            for mode in config.modes:
                for i, n in enumerate(config.threads):
                    for p in config.providers:
                        if p == "floor" or unavailable_reason(p, loss, shape, mode):
                            continue
                        if p in THREAD_AGNOSTIC:
                            if i:
                                continue
                            steps.append(Step(loss, shape, mode, None, p))
                        elif p in ISA_DEPENDENT:
                            steps += [Step(loss, shape, mode, n, p, isa) for isa in isas]
                        else:
                            steps.append(Step(loss, shape, mode, n, p))
    return steps


def run(config, progress=True, progress_file=None, on_case_done=None, command=None):
    """Run `config`; returns a Report. `on_case_done(report, loss, shape)` is
    called after each loss and shape (to print its table as soon as it is ready)."""
    steps = plan(config)
    n_mem = sum(len(config.shapes[loss]) for loss in config.losses) if config.memory else 0
    prog = Progress(len(steps) + n_mem, progress_file, progress)
    env = environment(config.providers)
    env["load_average_before"] = env.pop("load_average")
    report = Report(config, env, command=command)
    started = time.perf_counter()
    workload = None
    for k, step in enumerate(steps):
        if workload is None or (workload.loss, workload.shape) != (step.loss, step.shape):
            workload = None  # free the previous arrays first
            workload = Workload(step.loss, step.shape, config.seed)
        prog.step(step.label())
        result = Result(step.loss, step.shape, step.mode, step.threads, step.provider, step.isa)
        try:
            runner = make_runner(step.provider, workload, step.mode or "fused",
                                 step.threads or config.threads[0], step.isa)
            time.sleep(PAUSE_BETWEEN_PROVIDERS_S)
            with runner.context():
                timing = measure(runner.fn, config.repeats, config.min_time)
            result.median_s, result.samples_s, result.number = (
                timing.median_s, timing.samples_s, timing.number)
        except Unavailable as exc:
            result.error = str(exc)
        except Exception as exc:  # a peer failing must not end the run
            result.error = f"{type(exc).__name__}: {exc}"
            prog.clear()
            print(f"warning: {step.label()} failed: {result.error}", file=prog.file)
        runner = None
        report.add(result)
        last = k + 1 == len(steps) or (steps[k + 1].loss, steps[k + 1].shape) != (step.loss,
                                                                                    step.shape)
        if last:
            if config.memory:
                prog.step(f"{step.loss} {shape_label(step.shape)} memory")
                report.memory[(step.loss, tuple(step.shape))] = _memory(workload, config)
            prog.clear()
            if on_case_done is not None:
                on_case_done(report, step.loss, step.shape)
    prog.clear()
    report.elapsed_s = time.perf_counter() - started
    report.env["load_average_after"] = load_average()
    return report


def _memory(w, config):
    probes = {}
    n = config.threads[-1]
    with fastloss.threads(n), isa_path(config.isas[0] if config.isas else None):
        for label, provider, mode in MEMORY_PROBES:
            if provider not in config.providers:
                continue
            try:
                probes[label] = traced_peak(make_runner(provider, w, mode, n).fn)
            except Unavailable:
                continue
    return probes
