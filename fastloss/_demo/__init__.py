"""``fastloss demo``: small NumPy MLPs learning scikit-learn's digits with fastloss.

Four experiments (see :mod:`fastloss._demo.experiments`) show the classic
lessons of loss functions with fastloss giving each step's loss and gradient
in one fused call: cross-entropy vs MSE, class weights for a rare class,
``pos_weight`` for a binary task, and MAE/Huber vs MSE under outliers. Writes
PNG figures and ``summary.json`` into the output folder and prints a table.

Needs the ``demo`` extra (scikit-learn, matplotlib); :func:`main` says what to
install when they are missing.
"""

import importlib
import json
import os
import sys
import time

# (module, distribution) the demo imports beyond NumPy.
DEPENDENCIES = (("sklearn", "scikit-learn"), ("matplotlib", "matplotlib"),
                ("threadpoolctl", "threadpoolctl"))
DEFAULT_OUT = "fastloss-demo"
FIGURES = ("classification_curves.png", "imbalance_confusion.png",
           "binary_precision_recall.png", "regression_fits.png")


def missing_dependencies():
    """The distributions of :data:`DEPENDENCIES` that cannot be imported."""
    missing = []
    for module, dist in DEPENDENCIES:
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(dist)
    return missing


def install_hint(missing):
    """The message printed when the demo's dependencies are missing."""
    return (f"fastloss demo needs {', '.join(d for _, d in DEPENDENCIES)}; not installed here: "
            f"{', '.join(missing)}.\n"
            "Install the demo extra:\n"
            "    pip install \"fastloss[demo]\"\n"
            "(from a source checkout: pip install \".[demo]\"), or the packages themselves:\n"
            f"    pip install {' '.join(d for _, d in DEPENDENCIES)}")


def add_arguments(parser):
    """The options of ``fastloss demo``."""
    parser.add_argument("--out", metavar="DIR", default=DEFAULT_OUT,
                        help=f"folder for the figures and summary.json (default: ./{DEFAULT_OUT})")
    parser.add_argument("--epochs", type=_positive_int, default=None, metavar="N",
                        help="epochs per training run (default: 30, 8 with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run in seconds: fewer epochs, two learning rates, one seed")
    parser.add_argument("--seed", type=int, default=0, metavar="S",
                        help="seed of the data split, initial weights, batch order, rare subset "
                             "and outliers (default: 0); figures and headline numbers use it")
    parser.add_argument("--seeds", type=_positive_int, default=None, metavar="K",
                        help="also repeat everything with seeds S+1..S+K-1 and say in how many "
                             "seeds each lesson holds (default: 5, 1 with --quick)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def _positive_int(text):
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _environment():
    import matplotlib
    import numpy
    import sklearn

    import fastloss

    return {"version": fastloss.__version__, "isa": fastloss.isa(),
            "threads": fastloss.get_num_threads(), "openmp": fastloss.openmp_enabled(),
            "numpy": numpy.__version__, "scikit-learn": sklearn.__version__,
            "matplotlib": matplotlib.__version__,
            "blas_threads": 1}


def run(args):
    """Run the demo for parsed ``args`` (see :func:`add_arguments`); returns the exit code."""
    missing = missing_dependencies()
    if missing:
        print(install_hint(missing), file=sys.stderr)
        return 1
    from threadpoolctl import threadpool_limits

    from . import experiments, plots, report
    from .nn import Progress, StepClock

    start = time.perf_counter()
    cfg = experiments.Config.make(seed=args.seed, epochs=args.epochs, quick=args.quick)
    n_seeds = args.seeds or (1 if args.quick else 5)
    os.makedirs(args.out, exist_ok=True)
    progress = Progress(cfg.total_epochs() * n_seeds, enabled=not args.no_progress)
    runs, clocks = [], {}
    # The matrices are tiny (batches of 32): BLAS threads cost more than they
    # give here (measured: about 2-3x slower steps with two), so NumPy's BLAS
    # runs on one thread; fastloss keeps its own setting.
    with threadpool_limits(limits=1, user_api="blas"):
        for k in range(n_seeds):
            seed_cfg = experiments.Config.make(seed=cfg.seed + k, epochs=cfg.epochs,
                                               quick=cfg.quick)
            tag = f"seed {seed_cfg.seed}" + (f" ({k + 1}/{n_seeds})" if n_seeds > 1 else "")
            data = experiments.load(seed_cfg.seed)
            results = {}
            progress.prefix = tag
            results["classification"] = experiments.classification(data, seed_cfg, progress)
            results["imbalance"] = experiments.imbalance(data, seed_cfg, progress)
            results["binary"] = experiments.binary(data, seed_cfg, progress)
            results["regression"] = experiments.regression(data, seed_cfg, progress)
            for name, r in results.items():
                clocks.setdefault(name, StepClock()).add(r["clock"])
            runs.append(results)
            if k == 0:
                sizes = {"train": len(data.train), "validation": len(data.val),
                         "test": len(data.test)}
    progress.close()

    main_run = runs[0]
    paths = [os.path.join(args.out, f) for f in FIGURES]
    plots.classification_curves(main_run["classification"], paths[0])
    plots.imbalance_confusion(main_run["imbalance"], paths[1])
    plots.binary_precision_recall(main_run["binary"], paths[2])
    reg = main_run["regression"]
    plots.regression_fits(reg, reg["train_targets"], paths[3])

    total = StepClock()
    for c in clocks.values():
        total.add(c)
    timing = {name: c.as_dict() for name, c in clocks.items()}
    timing["training_steps"] = total.as_dict()
    timing["wall_s"] = round(time.perf_counter() - start, 2)
    timing["note"] = ("fastloss_s: inside the fastloss calls of the training steps; "
                      "rest_of_step_s: the rest of those steps (NumPy forward, backward, "
                      "update, and for MSE the softmax and its chain rule); all seeds")
    summary = report.build(runs, cfg, sizes, _environment(), timing, list(FIGURES))
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    env = summary["fastloss"]
    print(f"fastloss {env['version']} demo ({env['isa']}, {env['threads']} threads): digits, "
          f"{sizes['train']} train / {sizes['validation']} validation / {sizes['test']} test, "
          f"{cfg.epochs} epoch{'s' if cfg.epochs != 1 else ''}, seed {cfg.seed}"
          + (", quick" if cfg.quick else ""))
    print()
    print(report.table(summary))
    print(f"figures and summary.json in {args.out}")
    return 0
