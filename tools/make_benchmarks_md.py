#!/usr/bin/env python
"""Run the full benchmark comparison and write BENCHMARKS.md.

    python tools/make_benchmarks_md.py                  # full run, several minutes
    python tools/make_benchmarks_md.py --quick --output /tmp/bm.md   # smoke run

The timings come from fastloss._bench (the engine of ``fastloss bench``), as
numbers, not parsed from text. The page has: the machine and library versions
and the exact command, the performance targets evaluated from the numbers
(met / missed / not measured), how to read the tables, and one table per loss
and shape. Every option of ``fastloss bench`` is accepted (``--losses``,
``--shapes``, ``--threads``, ``--repeats``, ...); ``--json FILE`` also saves the
raw results with the evaluated targets.
"""

import argparse
import importlib.util
import json
import math
import os
import shlex
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

if importlib.util.find_spec("fastloss") is None:  # a checkout built in place, no PYTHONPATH
    sys.path.insert(0, ROOT)

from fastloss import _bench  # noqa: E402
from fastloss.__main__ import add_bench_arguments, config_from_args  # noqa: E402

CE, BCE, MSE = "cross_entropy", "bce_with_logits", "mse"
LARGE = 2**20  # elements from which a shape counts as large (thread scaling)


# --------------------------------------------------------------------------
# Targets, evaluated from the numbers.

def _status(ok):
    return "met" if ok else "missed"


def _missing(report, loss, shape, providers):
    """Why a target cannot be evaluated, or None."""
    if loss not in report.config.losses or tuple(shape) not in report.config.shapes[loss]:
        return f"{_bench.shape_label(shape)} not in this run"
    for p in providers:
        if p not in report.config.providers:
            return f"{p} left out of this run"
        reason = _bench.unavailable_reason(p, loss, shape, "fused")
        if reason:
            return reason
    return "no result (see warnings of the run)"


def _floor_target(report, loss, shape, limit):
    rows = []
    floor = report.time(loss, shape, None, None, "floor")
    for n in report.config.threads:
        name = f"{loss} {_bench.shape_label(shape)} fused, {n}t: fastloss / floor <= {limit:g}x"
        t = report.time(loss, shape, "fused", n, "fastloss")
        if t is None or floor is None:
            rows.append((name, _missing(report, loss, shape, ["fastloss"]), "not measured"))
            continue
        r = t / floor
        rows.append((name, f"{r:.2f}x ({_bench.format_time(t)} vs floor "
                     f"{_bench.format_time(floor)})", _status(r <= limit)))
    return rows


def _peer_target(report, loss, shape, peer, at_least):
    rows = []
    for n in report.config.threads:
        name = (f"{loss} {_bench.shape_label(shape)} fused, {n}t: >= {at_least:g}x "
                f"faster than {peer}")
        t = report.time(loss, shape, "fused", n, "fastloss")
        tp = report.time(loss, shape, "fused", n, peer)
        if t is None or tp is None:
            rows.append((name, _missing(report, loss, shape, ["fastloss", peer]),
                         "not measured"))
            continue
        ta = report.time(loss, shape, "fused", n, "fastloss_alloc")
        alloc = f"; with out=None {tp / ta:.1f}x" if ta else ""
        rows.append((name, f"{tp / t:.1f}x ({_bench.format_time(t)} vs "
                     f"{_bench.format_time(tp)}{alloc})", _status(tp / t >= at_least)))
    return rows


def _faster_everywhere(report, loss, peer):
    name = f"{loss}: fused faster than {peer} at every shape and thread count"
    cases = []
    for shape in report.config.shapes.get(loss, []) if loss in report.config.losses else []:
        for n in report.config.threads:
            t = report.time(loss, shape, "fused", n, "fastloss")
            tp = report.time(loss, shape, "fused", n, peer)
            if t is not None and tp is not None:
                cases.append((tp / t, shape, n))
    if not cases:
        return [(name, f"{peer} not measured", "not measured")]
    worst = min(cases)
    wins = sum(r > 1 for r, _, _ in cases)
    return [(name, f"faster in {wins}/{len(cases)}; smallest margin {worst[0]:.2f}x at "
             f"{_bench.shape_label(worst[1])} {worst[2]}t", _status(wins == len(cases)))]


def _small_call(report, shape=(64, 10), limit=5e-6):
    rows = []
    for n in report.config.threads:
        name = (f"{CE} {_bench.shape_label(shape)} fused, {n}t: whole call "
                f"< {_bench.format_time(limit)}")
        t = report.time(CE, shape, "fused", n, "fastloss")
        if t is None:
            rows.append((name, _missing(report, CE, shape, ["fastloss"]), "not measured"))
            continue
        ta = report.time(CE, shape, "fused", n, "fastloss_alloc")
        alloc = f"; out=None {_bench.format_time(ta)}" if ta else ""
        rows.append((name, f"{_bench.format_time(t)} (out=buf{alloc})", _status(t < limit)))
    return rows


def _thread_scaling(report):
    rows = []
    if len(report.config.threads) < 2:
        return [("1 -> 2 thread speed-up, large shapes", "only one thread count run", "info")]
    lo, hi = sorted(report.config.threads)[:2]
    for loss in report.config.losses:
        for shape in report.config.shapes[loss]:
            if math.prod(shape) < LARGE:
                continue
            t1 = report.time(loss, shape, "fused", lo, "fastloss")
            t2 = report.time(loss, shape, "fused", hi, "fastloss")
            if t1 and t2:
                rows.append((f"{loss} {_bench.shape_label(shape)} fused: {lo} -> {hi} threads",
                             f"{t1 / t2:.2f}x ({_bench.format_time(t1)} -> "
                             f"{_bench.format_time(t2)})", "info"))
    if not rows:
        rows.append((f"{lo} -> {hi} thread speed-up, shapes >= 2^20 elements",
                     "no large shape in this run", "info"))
    return rows


def evaluate_targets(report):
    """[(target, measured, status)], status in met / missed / not measured / info."""
    rows = []
    rows += _floor_target(report, CE, (2048, 32768), 1.5)
    rows += _floor_target(report, CE, (4096, 1000), 1.5)
    rows += _floor_target(report, CE, (65536, 10), 2.0)
    big = [s for s in report.config.shapes.get(CE, []) if math.prod(s) >= 4096 * 1000]
    for shape in big or [(4096, 1000), (2048, 32768)]:
        rows += _peer_target(report, CE, shape, "torch", 8)
    rows += _small_call(report)
    for loss in (CE, BCE, MSE):
        rows += _faster_everywhere(report, loss, "jax")
    rows += _floor_target(report, BCE, (2**24,), 1.3)
    rows += _peer_target(report, BCE, (2**24,), "torch", 10)
    rows += _floor_target(report, MSE, (2**24,), 1.2)
    rows += _peer_target(report, MSE, (2**24,), "torch", 4)
    rows += _thread_scaling(report)
    return rows


# --------------------------------------------------------------------------
# The page.

def _md_escape(text):
    return str(text).replace("|", "\\|")


def _load():
    try:
        return "/".join(f"{v:.2f}" for v in os.getloadavg())
    except (AttributeError, OSError):
        return "unknown"


# 1/5/15-minute load averages before and after the run: on a 2-CPU machine a
# load above ~0.5 means other work shared the cores, and 2-thread timings then
# include scheduling stalls (a descheduled OpenMP thread costs a time slice).
_LOAD_NOTE = "unknown"


def header_lines(report, command):
    env, cfg = report.env, report.config
    fl = env["fastloss"]
    build = fl.get("build") or {}
    rows = [
        ("date", env["date"]),
        ("CPU", f"{env['cpu_model']}; {env['cpu_count']} logical CPUs, "
                f"{env['cpus_available']} available to this process"),
        ("thread counts", ", ".join(map(str, cfg.threads))
         + f" (OMP_NUM_THREADS={env.get('omp_num_threads') or 'unset'}; fastloss "
           f"default {fl['default_threads']})"),
        ("fastloss", f"{fl['version']}, ISA path `{fl['isa']}`, OpenMP "
                     f"{'on' if fl['openmp'] else 'OFF'}"),
        ("compiler", f"`{build.get('compiler', 'unknown')}` "
                     f"`{' '.join(build.get('compile_flags', []))}`"),
        ("python / numpy", f"{env['python']} / {env['numpy']}"),
        ("torch", env.get("torch") or "not installed"),
        ("jax / jaxlib", f"{env['jax']} / {env['jaxlib']} (XLA's thread pool, as configured "
                         "at start-up)" if env.get("jax") else "not installed"),
        ("scikit-learn", env.get("sklearn") or "not installed"),
        ("timing", f"median of {cfg.repeats} loops of >= {cfg.min_time:g} s each, after a "
                   "warm-up call" + (" (--quick: small shapes, short loops)" if cfg.quick
                                     else "")),
        ("run time", f"{report.elapsed_s:.0f} s" if report.elapsed_s else "-"),
        ("load average", _LOAD_NOTE),
        ("command", f"`{command}`"),
    ]
    out = ["| | |", "|---|---|"]
    out += [f"| {k} | {_md_escape(v)} |" for k, v in rows]
    return out


def render(report, command):
    lines = [
        "# fastloss benchmarks",
        "",
        "Generated by `tools/make_benchmarks_md.py` from the numbers of one run of "
        "`fastloss._bench` (the engine of `fastloss bench`). Numbers depend on the "
        "machine; rerun the command below to reproduce them.",
        "",
    ]
    lines += header_lines(report, command)
    lines += ["", "## Targets", "",
              "Evaluated from the tables below (fused loss+gradient, `out=buf`, unless "
              "stated).", "",
              "| target | measured | status |", "|---|---|---|"]
    for name, measured, status in evaluate_targets(report):
        shown = {"met": "**met**", "missed": "**missed**"}.get(status, status)
        lines.append(f"| {_md_escape(name)} | {_md_escape(measured)} | {shown} |")
    lines += ["", "## How to read the tables", ""]
    lines += [f"* {_md_escape(n)}" for n in _bench.notes()]
    lines += ["* `/floor` is fastloss's time over the floor's; `out=None` is fastloss "
              "allocating its gradient; a peer cell is `time (speed-up of fastloss)`."]
    current = None
    for loss, shape in report.cases():
        if loss != current:
            lines += ["", f"## {loss}"]
            current = loss
        lines += ["", report.format_markdown(loss, shape, level=3)]
    failed = [r for r in report.results if r.error and not _bench.unavailable_reason(
        r.provider, r.loss, r.shape, r.mode or "fused")]
    if failed:
        lines += ["", "## Failures", ""]
        lines += [f"* {r.loss} {_bench.shape_label(r.shape)} {r.mode} {r.provider}: "
                  f"{_md_escape(r.error)}" for r in failed]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_bench_arguments(parser)
    parser.add_argument("--output", default=os.path.join(ROOT, "BENCHMARKS.md"),
                        help="the markdown file to write (default: BENCHMARKS.md at the "
                             "repository root)")
    parser.add_argument("--json", metavar="FILE",
                        help="also write the raw results and the evaluated targets as JSON")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
    except ValueError as exc:
        parser.error(str(exc))
    command = shlex.join(["python", "tools/make_benchmarks_md.py"] + argv)

    def done(report, loss, shape):
        print(f"{loss} {_bench.shape_label(shape)} done", file=sys.stderr, flush=True)

    global _LOAD_NOTE
    load_before = _load()
    report = _bench.run(config, progress=not args.no_progress, on_case_done=done,
                        command=command)
    _LOAD_NOTE = (f"{load_before} before, {_load()} after (1/5/15 min; 2 CPUs: above "
                  "~0.5 other work shared the cores and 2-thread times include "
                  "scheduling stalls)")
    with open(args.output, "w") as f:
        f.write(render(report, command))
    print(f"wrote {args.output} ({report.elapsed_s:.0f} s of benchmarks)", file=sys.stderr)
    if args.json:
        data = report.to_dict()
        data["targets"] = [{"target": t, "measured": m, "status": s}
                           for t, m, s in evaluate_targets(report)]
        with open(args.json, "w") as f:
            json.dump(data, f, indent=1)
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
