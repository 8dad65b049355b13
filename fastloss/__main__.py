"""Command line: ``fastloss [info | bench | demo] [options]`` (also ``python -m fastloss``).

* ``info``: the build configuration (version, compiler and flags, OpenMP,
  threads, dispatch path).
* ``bench``: times fastloss's forward, backward and fused loss+gradient against
  the memory floor, the float64 NumPy reference and, when installed, PyTorch,
  JAX and scikit-learn; prints one table per loss and shape (see
  ``fastloss bench --help`` and fastloss/bench/providers.py for what is timed
  and how). ``--isa avx2`` (or ``all``) also times fastloss's other
  instruction-set paths.
* ``demo``: trains small NumPy MLPs on scikit-learn's digits with fastloss's
  losses and writes figures and ``summary.json`` (needs the ``demo`` extra;
  see ``fastloss demo --help`` and fastloss/_demo/).
* no argument: ``info``, then ``bench --quick``.

``compare`` is kept as another name for ``bench --quick``.
"""

import argparse
import json
import shlex
import sys

import fastloss

_EPILOG = """\
shapes: NxC (e.g. 4096x1000) is a cross-entropy shape; a number of elements
(2^20, 1048576) is a BCE/MSE shape. Losses get the shapes of their kind.
Peers that are not installed are left out. Progress goes to stderr, tables to stdout.
examples:
  fastloss bench --quick
  fastloss bench --losses ce --shapes 4096x1000,64x10 --threads 1,2 --json ce.json
  fastloss bench --losses bce,mse --shapes 2^20 --modes fused --repeats 3
"""


def _csv(convert):
    def parse(text):
        try:
            return [convert(x) for x in text.split(",") if x.strip()]
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return parse


def _loss_name(text):
    """A --losses entry: a loss's name or alias (checked), or 'all'."""
    from . import bench as _bench

    return "all" if text.strip().lower() == "all" else _bench.canonical_loss(text)


def add_bench_arguments(parser):
    """The options of ``fastloss bench`` (also used by tools/make_benchmarks_md.py)."""
    from . import bench as _bench

    parser.add_argument("--losses", type=_csv(_loss_name), default=None,
                        help="comma list of " + ", ".join(_bench.LOSSES) + " (ce, bce: "
                             "the first two), or all (default: "
                             + ", ".join(_bench.DEFAULT_LOSSES) + ")")
    parser.add_argument("--shapes", type=_csv(_bench.parse_shape), default=None,
                        help="comma list, e.g. 4096x1000,64x10 or 2^20 (default: the full "
                             "set, or the small one with --quick)")
    parser.add_argument("--threads", type=_csv(int), default=None,
                        help="comma list of thread counts (default: 1,2)")
    parser.add_argument("--modes", type=_csv(str), default=None,
                        help="comma list of forward, backward, fused (default: all)")
    parser.add_argument("--providers", type=_csv(str), default=None,
                        help="comma list among " + ", ".join(_bench.PROVIDERS)
                             + " (default: all installed, less "
                             + ", ".join(sorted(_bench.NOT_QUICK)) + " with --quick; fastloss "
                             "and floor always run)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed loops per measurement; the median is reported "
                             f"(default: {_bench.FULL_TIMING['repeats']}, "
                             f"{_bench.QUICK_TIMING['repeats']} with --quick)")
    parser.add_argument("--min-time", type=float, default=None,
                        help="seconds each timed loop lasts at least (default: "
                             f"{_bench.FULL_TIMING['min_time']:g}, "
                             f"{_bench.QUICK_TIMING['min_time']:g} with --quick)")
    parser.add_argument("--isa", type=_csv(str), default=None,
                        help="comma list of the ISA paths to time fastloss on, among "
                             + ", ".join(_bench.ISAS) + ", default (the path in use: "
                             "fastloss.isa(), set by FASTLOSS_ISA) and all (every path this "
                             "machine runs); e.g. default,avx2 (default: default)")
    parser.add_argument("--no-memory", action="store_true",
                        help="skip the tracemalloc measurement of allocations")
    parser.add_argument("--quick", action="store_true",
                        help="small shapes, short loops: a smoke run (about half a minute)")
    parser.add_argument("--no-progress", action="store_true", help="no progress on stderr")


def config_from_args(args, quick=None):
    from . import bench as _bench

    return _bench.Config.make(
        losses=args.losses, shapes=args.shapes, modes=args.modes, threads=args.threads,
        providers=args.providers, repeats=args.repeats, min_time=args.min_time,
        memory=not args.no_memory, quick=args.quick if quick is None else quick,
        isas=args.isa)


def print_header(report, file=sys.stdout):
    from . import bench as _bench

    env, cfg = report.env, report.config
    peers = [f"{name} {env.get(key)}" for name, key in
             (("torch", "torch"), ("jax", "jax"), ("scikit-learn", "sklearn")) if env.get(key)]
    isas = ", ".join(cfg.isas) or env["fastloss"]["isa"]
    print(f"\nfastloss {env['fastloss']['version']} ({isas}, OpenMP "
          f"{'on' if env['fastloss']['openmp'] else 'OFF'}) on {env['cpu_model']}, "
          f"{env['cpus_available']} CPUs available, load average "
          f"{_bench.format_load(env.get('load_average_before'))}", file=file)
    print(f"numpy {env['numpy']}" + (", " + ", ".join(peers) if peers else "")
          + f"; threads {','.join(map(str, cfg.threads))}; median of {cfg.repeats} loops "
          f">= {format(cfg.min_time, 'g')} s each", file=file)
    for note in _bench.notes(cfg.providers):
        print(f"  * {note}", file=file)
    missing = [f"{p} ({reason})" for p in cfg.providers if p in _bench.PEERS
               for reason in [_bench.unavailable_reason(p, "mse", (1,), "fused")] if reason]
    if missing:
        print(f"  * not run: {', '.join(missing)}", file=file)
    file.flush()


def bench_lm_head(args):
    """``fastloss bench --lm-head``: fastloss/bench/lm_head.py's tables."""
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        print('fastloss bench --lm-head: needs torch (pip install "fastloss[torch]")',
              file=sys.stderr)
        return 2
    from .bench import lm_head

    threads = args.threads[-1] if args.threads else 2
    argv = ["--threads", str(threads), "--repeats", str(args.repeats or 3)]
    lm_head.main(argv + ([] if args.quick else ["--large-vocab"]))
    return 0


def bench(args, quick=None, file=sys.stdout, command=None):
    from . import bench as _bench

    if getattr(args, "lm_head", False):
        return bench_lm_head(args)
    try:
        config = config_from_args(args, quick)
    except ValueError as exc:
        print(f"fastloss bench: {exc}", file=sys.stderr)
        return 2
    if args.shapes:
        used = {s for loss in config.losses for s in config.shapes[loss]}
        for shape in args.shapes:
            if tuple(shape) not in used:
                print(f"fastloss bench: warning: no chosen loss takes shape "
                      f"{_bench.shape_label(shape)} (NxC shapes are for cross_entropy, element "
                      "counts for bce_with_logits and mse)", file=sys.stderr)
    if not any(config.shapes[loss] for loss in config.losses):
        print("fastloss bench: no shape fits the chosen losses (NxC shapes are for "
              "cross_entropy, element counts for bce_with_logits and mse)", file=sys.stderr)
        return 2

    state = {"header": False}

    def print_case(report, loss, shape):
        if not state["header"]:
            print_header(report, file)
            state["header"] = True
        print("\n" + report.format_text(loss, shape), file=file, flush=True)

    report = _bench.run(config, progress=not args.no_progress, on_case_done=print_case,
                        command=command)
    print(f"\n({report.elapsed_s:.1f} s; load average "
          f"{_bench.format_load(report.env.get('load_average_before'))} before, "
          f"{_bench.format_load(report.env.get('load_average_after'))} after)", file=file)
    if getattr(args, "json", None):
        with open(args.json, "w") as f:
            json.dump(report.to_dict(), f, indent=1)
        print(f"results written to {args.json}", file=file)
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="fastloss", description=__doc__.split("\n\n")[0],
        epilog="no command: info, then bench --quick")
    sub = parser.add_subparsers(dest="command", metavar="{info,bench,demo}")
    sub.add_parser("info", help="print the build configuration")
    for name, kw in (("bench", {"help": "time fastloss against its peers and the memory floor"}),
                     ("compare", {})):  # compare: the old name, = bench --quick
        p = sub.add_parser(name, epilog=_EPILOG,
                           formatter_class=argparse.RawDescriptionHelpFormatter, **kw)
        add_bench_arguments(p)
        p.add_argument("--lm-head", action="store_true",
                       help="instead of the loss tables: linear_cross_entropy (an LM head), "
                            "time and peak memory of fastloss, fastloss.torch and torch's "
                            "reference and chunked paths (needs torch; at the last --threads "
                            "value, default 2, and --repeats, default 3; minutes)")
        p.add_argument("--json", metavar="FILE",
                       help="also write the machine, versions, settings and every raw "
                            "timing as JSON")
    from . import _demo

    demo = sub.add_parser(
        "demo", help="train small NumPy MLPs on scikit-learn's digits with fastloss",
        description=_demo.__doc__.split("\n\n")[0].replace("``", ""),
        epilog="needs the demo extra: pip install \"fastloss[demo]\"")
    _demo.add_arguments(demo)
    argv = sys.argv[1:] if argv is None else list(argv)
    command = shlex.join(["fastloss"] + argv)
    args = parser.parse_args(argv)
    if args.command in (None, "info"):
        fastloss.show_config()
    if args.command is None:
        args = parser.parse_args(["bench", "--quick"])
    if args.command == "demo":
        return _demo.run(args)
    if args.command in ("bench", "compare"):
        return bench(args, quick=True if args.command == "compare" else None, command=command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
