#!/usr/bin/env python
"""Run the full benchmark comparison and write BENCHMARKS.md.

    python tools/make_benchmarks_md.py                  # full run, many minutes
    python tools/make_benchmarks_md.py --quick --output /tmp/bm.md   # smoke run

The timings come from fastloss.bench (the engine of ``fastloss bench``), as
numbers, not parsed from text. The page has: the machine (CPU model and
flags, load average before and after) and library versions and the exact
command, the performance targets evaluated from the numbers (met / missed /
not measured) on each ISA path, how to read the tables, and one table per
loss and shape. Every option of ``fastloss bench`` is accepted (``--losses``,
``--shapes``, ``--threads``, ``--repeats``, ``--isa``, ...); ``--json FILE``
also saves the raw results with the evaluated targets.

fastloss is timed on the default ISA path and, where that is not AVX2 and the
CPU has AVX2, on the AVX2 path too (what most users' CPUs run): ``--isa
default,avx2``, unless ``--isa`` says otherwise. torch.compile is a column of
full runs (``--providers`` to choose).
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

from fastloss import bench as _bench  # noqa: E402
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


def _floor_target(report, isa, loss, shape, limit):
    rows = []
    floor = report.time(loss, shape, None, None, "floor")
    for n in report.config.threads:
        name = (f"{isa}: {loss} {_bench.shape_label(shape)} fused, {n}t: fastloss / floor "
                f"<= {limit:g}x")
        t = report.time(loss, shape, "fused", n, "fastloss", isa)
        if t is None or floor is None:
            rows.append((name, _missing(report, loss, shape, ["fastloss"]), "not measured"))
            continue
        r = t / floor
        rows.append((name, f"{r:.2f}x ({_bench.format_time(t)} vs floor "
                     f"{_bench.format_time(floor)})", _status(r <= limit)))
    return rows


def _peer_target(report, isa, loss, shape, peer, at_least):
    rows = []
    for n in report.config.threads:
        name = (f"{isa}: {loss} {_bench.shape_label(shape)} fused, {n}t: >= {at_least:g}x "
                f"faster than {peer}")
        t = report.time(loss, shape, "fused", n, "fastloss", isa)
        tp = report.time(loss, shape, "fused", n, peer)
        if t is None or tp is None:
            rows.append((name, _missing(report, loss, shape, ["fastloss", peer]),
                         "not measured"))
            continue
        ta = report.time(loss, shape, "fused", n, "fastloss_alloc", isa)
        alloc = f"; with out=None {tp / ta:.1f}x" if ta else ""
        rows.append((name, f"{tp / t:.1f}x ({_bench.format_time(t)} vs "
                     f"{_bench.format_time(tp)}{alloc})", _status(tp / t >= at_least)))
    return rows


def _faster_everywhere(report, isa, loss, peer):
    name = f"{isa}: {loss}: fused faster than {peer} at every shape and thread count"
    cases = []
    for shape in report.config.shapes.get(loss, []) if loss in report.config.losses else []:
        for n in report.config.threads:
            t = report.time(loss, shape, "fused", n, "fastloss", isa)
            tp = report.time(loss, shape, "fused", n, peer)
            if t is not None and tp is not None:
                cases.append((tp / t, shape, n))
    if not cases:
        return [(name, f"{peer} not measured", "not measured")]
    worst = min(cases)
    wins = sum(r > 1 for r, _, _ in cases)
    return [(name, f"faster in {wins}/{len(cases)}; smallest margin {worst[0]:.2f}x at "
             f"{_bench.shape_label(worst[1])} {worst[2]}t", _status(wins == len(cases)))]


def _small_call(report, isa, shape=(64, 10), limit=5e-6):
    rows = []
    for n in report.config.threads:
        name = (f"{isa}: {CE} {_bench.shape_label(shape)} fused, {n}t: whole call "
                f"< {_bench.format_time(limit)}")
        t = report.time(CE, shape, "fused", n, "fastloss", isa)
        if t is None:
            rows.append((name, _missing(report, CE, shape, ["fastloss"]), "not measured"))
            continue
        ta = report.time(CE, shape, "fused", n, "fastloss_alloc", isa)
        alloc = f"; out=None {_bench.format_time(ta)}" if ta else ""
        rows.append((name, f"{_bench.format_time(t)} (out=buf{alloc})", _status(t < limit)))
    return rows


def _thread_scaling(report, isa):
    rows = []
    if len(report.config.threads) < 2:
        return [(f"{isa}: 1 -> 2 thread speed-up, large shapes", "only one thread count run",
                 "info")]
    lo, hi = sorted(report.config.threads)[:2]
    for loss in report.config.losses:
        for shape in report.config.shapes[loss]:
            if math.prod(shape) < LARGE:
                continue
            t1 = report.time(loss, shape, "fused", lo, "fastloss", isa)
            t2 = report.time(loss, shape, "fused", hi, "fastloss", isa)
            if t1 and t2:
                rows.append((f"{isa}: {loss} {_bench.shape_label(shape)} fused: {lo} -> {hi} "
                             "threads", f"{t1 / t2:.2f}x ({_bench.format_time(t1)} -> "
                             f"{_bench.format_time(t2)})", "info"))
    if not rows:
        rows.append((f"{isa}: {lo} -> {hi} thread speed-up, shapes >= 2^20 elements",
                     "no large shape in this run", "info"))
    return rows


def evaluate_targets(report):
    """[(target, measured, status)], status in met / missed / not measured / info;
    every target on each ISA path of the run, the default path first."""
    rows = []
    for isa in report.isas:
        rows += _floor_target(report, isa, CE, (2048, 32768), 1.5)
        rows += _floor_target(report, isa, CE, (4096, 1000), 1.5)
        rows += _floor_target(report, isa, CE, (65536, 10), 2.0)
        big = [s for s in report.config.shapes.get(CE, []) if math.prod(s) >= 4096 * 1000]
        for shape in big or [(4096, 1000), (2048, 32768)]:
            rows += _peer_target(report, isa, CE, shape, "torch", 8)
        rows += _small_call(report, isa)
        for loss in (CE, BCE, MSE):
            for peer in ("torch_compile", "jax"):
                rows += _faster_everywhere(report, isa, loss, peer)
        rows += _floor_target(report, isa, BCE, (2**24,), 1.3)
        rows += _peer_target(report, isa, BCE, (2**24,), "torch", 10)
        rows += _floor_target(report, isa, MSE, (2**24,), 1.2)
        rows += _peer_target(report, isa, MSE, (2**24,), "torch", 4)
        rows += _thread_scaling(report, isa)
    return rows


# --------------------------------------------------------------------------
# The page.

def _md_escape(text):
    return str(text).replace("|", "\\|")


def _load_note(env):
    """The 1/5/15-minute load averages before and after the run: on a 2-CPU
    machine a load above ~0.5 means other work shared the cores, and 2-thread
    timings then include scheduling stalls (a descheduled OpenMP thread costs a
    time slice)."""
    busy = 0.25 * (env.get("cpus_available") or 2)
    return (f"{_bench.format_load(env.get('load_average_before'))} before, "
            f"{_bench.format_load(env.get('load_average_after'))} after (1/5/15 min; "
            f"above ~{busy:g} other work shared the cores and multi-thread times include "
            "scheduling stalls)")


def _isa_note(report):
    fl = report.env["fastloss"]
    timed = [f"`{i}`" + (" (default)" if k == 0 else "") for k, i in enumerate(report.isas)]
    return (f"{', '.join(timed)} timed; this build and CPU run "
            f"{', '.join(fl.get('isas_available') or ['?'])}"
            + (f" (FASTLOSS_ISA={env_isa})" if (env_isa := report.env.get("fastloss_isa_env"))
               else ""))


def header_lines(report, command):
    env, cfg = report.env, report.config
    fl = env["fastloss"]
    build = fl.get("build") or {}
    rows = [
        ("date", env["date"]),
        ("CPU", f"{env['cpu_model']}; {env['cpu_count']} logical CPUs, "
                f"{env['cpus_available']} available to this process; vector flags "
                f"{' '.join(env.get('cpu_vector_flags') or []) or 'unknown'}"),
        ("thread counts", ", ".join(map(str, cfg.threads))
         + f" (OMP_NUM_THREADS={env.get('omp_num_threads') or 'unset'}; fastloss "
           f"default {fl['default_threads']})"),
        ("fastloss", f"{fl['version']}, OpenMP {'on' if fl['openmp'] else 'OFF'}"),
        ("ISA paths", _isa_note(report)),
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
        ("load average", _load_note(env)),
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
        "`fastloss.bench` (the engine of `fastloss bench`). Numbers depend on the "
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
    lines += [f"* {_md_escape(n)}" for n in _bench.notes(report.config.providers)]
    lines += ["* `/floor` is fastloss's time over the floor's; `out=None` is fastloss "
              "allocating its gradient; a peer cell is `time (speed-up of fastloss)`."]
    if len(report.isas) > 1:
        lines += ["* `isa` is the instruction-set path fastloss ran on in that row "
                  "(`FASTLOSS_ISA`); the peers do not depend on it: their time is the same "
                  "in each ISA row, and the speed-up is over that row's fastloss time."]
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
        lines += [f"* {r.label()}: {_md_escape(r.error)}" for r in failed]
    return "\n".join(lines) + "\n"


MORE_PROVIDERS = ("fastloss", "fastloss_alloc", "floor", "torch", "torch_compile")


def more_losses_config(config):
    """The second run: every loss that is not a headline one (fastloss.bench's
    SPECS), fused only, fastloss against the floor, torch and torch.compile,
    with the main run's thread counts, ISA paths and timing."""
    more = tuple(n for n in _bench.LOSSES if n not in _bench.DEFAULT_LOSSES)
    providers = [p for p in config.providers if p in MORE_PROVIDERS]
    return _bench.Config.make(losses=more, modes=("fused",), threads=config.threads,
                              providers=providers, repeats=config.repeats,
                              min_time=config.min_time, memory=False, quick=config.quick,
                              seed=config.seed, isas=config.isas)


def more_losses_section(report):
    """The tables of the second run, after the headline losses'."""
    lines = ["", "## More losses", "",
             "The losses added after the first seven, at one large shape each "
             "(fastloss.bench's SPECS): the fused call only, against the floor, torch "
             f"and torch.compile; {report.elapsed_s:.0f} s, load average "
             f"{_bench.format_load(report.env.get('load_average_before'))} before, "
             f"{_bench.format_load(report.env.get('load_average_after'))} after."]
    for loss, shape in report.cases():
        lines += ["", report.format_markdown(loss, shape, level=3)]
    return "\n".join(lines) + "\n"


def lm_head_section(args):
    """The language-model head's tables (fastloss.bench.lm_head, the engine of
    ``fastloss bench --lm-head``), at the run's largest thread count."""
    import contextlib
    import io

    from fastloss.bench import lm_head

    threads = max(args.threads) if args.threads else 2
    print(f"LM head at {threads} threads ...", file=sys.stderr, flush=True)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        lm_head.main(["--threads", str(threads), "--large-vocab"])
    return ("\n## Language-model head (linear_cross_entropy)\n\n"
            f"`fastloss bench --lm-head --threads {threads}` (fastloss/bench/lm_head.py: "
            "the providers and how memory is measured), run after the tables above: "
            "fastloss (NumPy), fastloss.torch, torch's reference path (the whole logits) "
            "and torch's chunked path (`LinearCrossEntropyOptions()`).\n\n"
            + out.getvalue())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_bench_arguments(parser)
    parser.add_argument("--output", default=os.path.join(ROOT, "BENCHMARKS.md"),
                        help="the markdown file to write (default: BENCHMARKS.md at the "
                             "repository root)")
    parser.add_argument("--json", metavar="FILE",
                        help="also write the raw results and the evaluated targets as JSON")
    parser.add_argument("--no-more-losses", action="store_true",
                        help="leave out the second run, of the losses beyond "
                             "cross-entropy, BCE-with-logits and MSE (run by default "
                             "when --losses is not given)")
    parser.add_argument("--no-lm-head", action="store_true",
                        help="leave out the language-model head section (fastloss bench "
                             "--lm-head; run by default when torch is installed and not "
                             "--quick)")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    if args.isa is None:  # the default path, and the AVX2 path most users' CPUs run
        args.isa = ["default"] + (["avx2"] if "avx2" in _bench.available_isas() else [])
    try:
        config = config_from_args(args)
    except ValueError as exc:
        parser.error(str(exc))
    command = shlex.join(["python", "tools/make_benchmarks_md.py"] + argv)

    def done(report, loss, shape):
        print(f"{loss} {_bench.shape_label(shape)} done", file=sys.stderr, flush=True)

    report = _bench.run(config, progress=not args.no_progress, on_case_done=done,
                        command=command)
    text = render(report, command)
    if not (args.no_more_losses or args.losses):
        more = _bench.run(more_losses_config(config), progress=not args.no_progress,
                          on_case_done=done)
        text += more_losses_section(more)
    if not (args.no_lm_head or args.quick) and importlib.util.find_spec("torch"):
        text += lm_head_section(args)
    with open(args.output, "w") as f:
        f.write(text)
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
