"""summary.json and the stdout table of ``fastloss demo``: metrics, lessons, timing."""

import math

import numpy as np

from .experiments import TARGET_ACCURACY

# (experiment, loss, metric): the headline numbers, also summarised across seeds.
KEY_METRICS = (
    ("classification", "cross_entropy", "val_accuracy"),
    ("classification", "mse", "val_accuracy"),
    ("classification", "cross_entropy", "epochs_to_95"),
    ("classification", "mse", "epochs_to_95"),
    ("classification", "cross_entropy", "test_accuracy"),
    ("classification", "mse", "test_accuracy"),
    ("imbalance", "unweighted", "rare_recall"),
    ("imbalance", "weighted", "rare_recall"),
    ("imbalance", "unweighted", "val_accuracy_imbalanced"),
    ("imbalance", "weighted", "val_accuracy_imbalanced"),
    ("binary", "plain", "recall"),
    ("binary", "pos_weight", "recall"),
    ("binary", "plain", "precision"),
    ("binary", "pos_weight", "precision"),
    ("regression", "mse", "clean_mae"),
    ("regression", "l1", "clean_mae"),
    ("regression", "huber", "clean_mae"),
)


def _get(results, path):
    exp, loss, metric = path
    return results[exp]["losses"][loss][metric]


def _epochs(e):
    return math.inf if e is None else e


def _lessons(r):
    """{name: (holds, what was compared)} for one seed's results."""
    cls, imb, bi, reg = (r[k]["losses"] for k in ("classification", "imbalance", "binary",
                                                   "regression"))
    ce, mse = cls["cross_entropy"], cls["mse"]
    e_ce, e_mse = ce["epochs_to_95"], mse["epochs_to_95"]
    return {
        "ce_reaches_95": (ce["val_accuracy"] >= TARGET_ACCURACY,
                          f"validation accuracy {ce['val_accuracy']:.3f}"),
        "ce_beats_mse": (ce["val_accuracy"] > mse["val_accuracy"],
                         f"{ce['val_accuracy']:.3f} vs {mse['val_accuracy']:.3f}"),
        "ce_faster_than_mse": (_epochs(e_ce) < _epochs(e_mse),
                               f"epochs to 95%: {e_ce} vs {e_mse}"),
        "weights_raise_rare_recall": (
            imb["weighted"]["rare_recall"] > imb["unweighted"]["rare_recall"],
            f"{imb['weighted']['rare_recall']:.3f} vs {imb['unweighted']['rare_recall']:.3f}"),
        "pos_weight_raises_recall": (
            bi["pos_weight"]["recall"] > bi["plain"]["recall"],
            f"{bi['pos_weight']['recall']:.3f} vs {bi['plain']['recall']:.3f}"),
        "l1_beats_mse": (reg["l1"]["clean_mae"] < reg["mse"]["clean_mae"],
                         f"clean MAE {reg['l1']['clean_mae']:.4f} vs "
                         f"{reg['mse']['clean_mae']:.4f}"),
        "huber_beats_mse": (reg["huber"]["clean_mae"] < reg["mse"]["clean_mae"],
                            f"clean MAE {reg['huber']['clean_mae']:.4f} vs "
                            f"{reg['mse']['clean_mae']:.4f}"),
    }


LESSON_TEXT = {
    "ce_reaches_95": "cross-entropy reaches 95% validation accuracy",
    "ce_beats_mse": "cross-entropy beats MSE on validation accuracy after the same epochs",
    "ce_faster_than_mse": "cross-entropy reaches 95% validation accuracy in fewer epochs",
    "weights_raise_rare_recall": "class weights raise the rare digit's recall",
    "pos_weight_raises_recall": "pos_weight raises the positive class's recall",
    "l1_beats_mse": "MAE (L1) beats MSE on clean held-out error despite the outliers",
    "huber_beats_mse": "Huber beats MSE on clean held-out error despite the outliers",
}

# What goes into summary.json per loss (the rest, curves for the figures, stays out).
_DROP = {"pr_curve", "test_prediction"}


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def _experiment(result):
    out = {k: v for k, v in result.items()
           if k not in ("losses", "clock", "clean_test_target", "train_targets")}
    for name, r in result["losses"].items():
        assert name not in out, f"loss name {name!r} collides with a key of the experiment"
        entry = {k: v for k, v in r.items() if k not in _DROP and k != "history"}
        if "history" in r:
            entry["history"] = {k: v for k, v in r["history"].items() if k != "step_loss"}
        out[name] = entry
    return _plain(out)


def build(runs, cfg, data_sizes, env, timing, figures):
    """The summary.json dict. ``runs``: one results dict per seed, the first the main one."""
    main = runs[0]
    per_seed = [_lessons(r) for r in runs]
    lessons = {name: bool(held) for name, (held, _) in per_seed[0].items()}
    details = {}
    for name, (held, what) in per_seed[0].items():
        details[name] = {"holds": bool(held), "lesson": LESSON_TEXT[name], "compared": what,
                         "seeds_held": sum(bool(s[name][0]) for s in per_seed),
                         "seeds": len(runs)}
    across = {}
    for path in KEY_METRICS:
        values = [_get(r, path) for r in runs]
        known = [v for v in values if v is not None]
        across[".".join(path)] = {
            "per_seed": values,
            "mean": float(np.mean(known)) if len(known) == len(values) else None,
            "min": min(known) if known else None, "max": max(known) if known else None}
    summary = {
        "fastloss": env,
        "settings": {"seed": cfg.seed, "seeds": [cfg.seed + k for k in range(len(runs))],
                     "epochs": cfg.epochs, "learning_rates": list(cfg.lrs),
                     "batch_size": cfg.batch_size,
                     "optimizer": "SGD, momentum 0.9, learning rate decaying to 0 along a "
                                  "half cosine",
                     "hidden_units": cfg.hidden, "hidden_units_regression": cfg.hidden_regression,
                     "quick": cfg.quick, "split": data_sizes,
                     "metrics_on": "the validation split, except test_accuracy and the "
                                   "regression's clean_* (the clean test split)"},
    }
    for exp in ("classification", "imbalance", "binary", "regression"):
        summary[exp] = _experiment(main[exp])
    summary.update({
        "lessons": lessons,
        "lesson_details": details,
        "across_seeds": across,
        "timing": timing,
        "figures": figures,
    })
    return _plain(summary)


def _fmt(v, digits=3):
    if v is None:
        return "never"
    if isinstance(v, int):
        return str(v)
    return f"{v:.{digits}f}"


def table(summary):
    """The stdout summary: one line per model, then the lessons and the timing."""
    s = summary
    n_seeds = len(s["settings"]["seeds"])
    across = s["across_seeds"]
    rows = []

    def row(exp, name, label, metric, digits=3, where="val"):
        value = s[exp][name][metric]
        spread = ""
        key = f"{exp}.{name}.{metric}"
        if n_seeds > 1 and key in across and across[key]["mean"] is not None:
            a = across[key]
            spread = f"{_fmt(a['mean'], digits)} [{_fmt(a['min'], digits)}, " \
                     f"{_fmt(a['max'], digits)}]"
        first = not any(r[0] == exp for r in rows)
        rows.append((exp if first else "", label, f"{metric} ({where})", _fmt(value, digits),
                     spread))

    cls = s["classification"]
    for name, label in (("cross_entropy", "cross-entropy"), ("mse", "MSE on softmax")):
        label = f"{label}, lr {cls[name]['lr']:g}"
        row("classification", name, label, "val_accuracy")
        row("classification", name, "", "epochs_to_95", digits=1)
        row("classification", name, "", "test_accuracy", where="test")
    rare = s["imbalance"]["rare_digit"]
    for name in ("unweighted", "weighted"):
        row("imbalance", name, f"CE {name}, lr {s['imbalance'][name]['lr']:g}", "rare_recall")
        row("imbalance", name, "", "val_accuracy_imbalanced")
    for name, label in (("plain", "BCE"), ("pos_weight", "BCE + pos_weight")):
        row("binary", name, f"{label}, lr {s['binary'][name]['lr']:g}", "recall")
        row("binary", name, "", "precision")
    for name, label in (("mse", "MSE"), ("l1", "MAE (L1)"), ("huber", "Huber")):
        row("regression", name, f"{label}, lr {s['regression'][name]['lr']:g}", "clean_mae",
            digits=4, where="clean test")
    head = ("experiment", "model", "metric", "value",
            f"{n_seeds} seeds: mean [min, max]" if n_seeds > 1 else "")
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(5)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(head, widths)).rstrip(),
             "  ".join("-" * w for w in widths[:4] + ([widths[4]] if n_seeds > 1 else []))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.append(f"(imbalance: digit {rare} kept in {s['imbalance']['rare_train_examples']} of "
                 f"{s['imbalance']['rare_train_examples_before']} training examples; "
                 "val_accuracy_imbalanced counts its validation examples at that rate. "
                 f"binary: digit {s['binary']['positive_digit']} vs the rest)")
    lines.append("")
    held = f"; held in k of {n_seeds} seeds" if n_seeds > 1 else ""
    lines.append(f"lessons (seed {s['settings']['seed']:d}{held}):")
    for d in s["lesson_details"].values():
        mark = "yes" if d["holds"] else "NO "
        seeds = f"  ({d['seeds_held']}/{d['seeds']} seeds)" if n_seeds > 1 else ""
        lines.append(f"  [{mark}] {d['lesson']}: {d['compared']}{seeds}")
    t = s["timing"]["training_steps"]
    lines.append("")
    lines.append(f"time in training steps: {t['fastloss_s'] + t['rest_of_step_s']:.2f} s, of "
                 f"which inside fastloss {t['fastloss_s']:.2f} s "
                 f"({100 * t['fastloss_fraction']:.0f}%, {t['fastloss_us_per_step']:.1f} us "
                 f"per step over {t['steps']} steps); wall time {s['timing']['wall_s']:.1f} s")
    return "\n".join(lines)
