"""The figures of ``fastloss demo`` (PNG, matplotlib's Agg renderer, no pyplot).

Figures are built on :class:`matplotlib.figure.Figure` directly, so the demo
never picks a GUI backend nor needs a display.
"""

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from .experiments import TARGET_ACCURACY

COLORS = {"cross_entropy": "#1f77b4", "mse": "#d62728", "l1": "#2ca02c", "huber": "#9467bd",
          "unweighted": "#7f7f7f", "weighted": "#1f77b4", "plain": "#7f7f7f",
          "pos_weight": "#ff7f0e"}
LABELS = {"cross_entropy": "cross-entropy", "mse": "MSE, softmax vs one-hot",
          "l1": "MAE (L1)", "huber": "Huber (delta=1)", "unweighted": "no class weights",
          "weighted": "balanced class weights", "plain": "BCE", "pos_weight": "BCE + pos_weight"}
REGRESSION_LABELS = {"mse": "MSE", "l1": "MAE (L1)", "huber": "Huber (delta=1)"}
DPI = 110


def _figure(width, height):
    fig = Figure(figsize=(width, height), layout="constrained")
    return fig


def _style(ax, title, xlabel, ylabel):
    ax.set_title(title, fontsize=11)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    ax.spines[["top", "right"]].set_visible(False)


def classification_curves(result, path):
    """Training loss, validation loss, validation accuracy and the learning-rate search."""
    fig = _figure(11, 7.6)
    axes = fig.subplots(2, 2)
    losses = result["losses"]
    for name, r in losses.items():
        h, color = r["history"], COLORS[name]
        label = f"{LABELS[name]} (lr={r['lr']:g})"
        epochs = np.arange(1, len(h["train_loss"]) + 1)
        steps = np.linspace(0, len(epochs), len(h["step_loss"]) + 1)[1:]
        axes[0, 0].plot(steps, h["step_loss"], color=color, alpha=0.12, lw=0.6)
        axes[0, 0].plot(epochs, h["train_loss"], color=color, lw=2, label=label)
        axes[0, 1].plot(epochs, h["val_loss"], color=color, lw=2, label=label)
        e = r["epochs_to_95"]
        reached = f"95% at epoch {e}" if e is not None else "never 95%"
        axes[1, 0].plot(epochs, h["val_accuracy"], color=color, lw=2, marker="o", ms=3,
                        label=f"{LABELS[name]}: final {r['val_accuracy']:.3f}, {reached}")
        if e is not None:
            axes[1, 0].plot([e], [h["val_accuracy"][e - 1]], marker="o", ms=11, mfc="none",
                            mec=color, mew=2, ls="none")
        lrs = [float(k) for k in r["lr_search"]]
        accs = [np.nan if v is None else v for v in r["lr_search"].values()]  # None: diverged
        axes[1, 1].plot(lrs, accs, color=color, lw=2, marker="o",
                        label=LABELS[name])
        axes[1, 1].plot([r["lr"]], [r["val_accuracy"]], marker="*", ms=14, color=color,
                        ls="none")
    for ax in axes[0]:
        ax.set_yscale("log")
    _style(axes[0, 0], "Training loss (each loss's own objective)", "epoch",
           "loss (faint: every mini-batch)")
    _style(axes[0, 1], "Validation loss (each its own: the scales differ)", "epoch", "loss")
    _style(axes[1, 0], "Validation accuracy (circle: first epoch at 95%)", "epoch", "accuracy")
    axes[1, 0].axhline(TARGET_ACCURACY, color="k", ls="--", lw=0.8)
    low = min(min(r["history"]["val_accuracy"]) for r in losses.values())
    axes[1, 0].set_ylim(max(0.0, min(low, 0.9) - 0.02), 1.0)
    _style(axes[1, 1], "Learning-rate search (star: chosen)", "learning rate",
           "final validation accuracy")
    axes[1, 1].set_xscale("log")
    for ax in axes.flat:
        ax.legend(fontsize=8.5, loc="best")
    fig.suptitle("Digits, 64-64-10 MLP: cross-entropy vs MSE on one-hot targets",
                 fontsize=13, fontweight="bold")
    fig.savefig(path, dpi=DPI)


def imbalance_confusion(result, path):
    """The two validation confusion matrices of the imbalance experiment."""
    fig = _figure(11.5, 5.4)
    axes = fig.subplots(1, 2)
    rare = result["rare_digit"]
    image = None
    for ax, name in zip(axes, ("unweighted", "weighted")):
        r = result["losses"][name]
        cm = np.array(r["confusion_matrix"])
        rows = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
        image = ax.imshow(rows, cmap="Blues", vmin=0, vmax=1)
        for i in range(cm.shape[0]):
            for j in range(cm.shape[1]):
                if cm[i, j]:
                    ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=8,
                            color="white" if rows[i, j] > 0.6 else "black")
        ax.add_patch(Rectangle((-0.5, rare - 0.5), cm.shape[1], 1, fill=False,
                               ec="#d62728", lw=2))
        ax.set_xticks(range(10))
        ax.set_yticks(range(10))
        ax.set_xlabel("predicted digit")
        ax.set_ylabel("true digit")
        ax.set_title(f"{LABELS[name]}: recall of {rare} {r['rare_recall']:.2f}\naccuracy "
                     f"{r['val_accuracy']:.3f} here, {r['val_accuracy_imbalanced']:.3f} at the "
                     "training's imbalance", fontsize=10.5)
    fig.colorbar(image, ax=axes, shrink=0.8, label="share of the true digit's examples")
    fig.suptitle(f"Digit {rare} made rare in training ({result['rare_train_examples']} of "
                 f"{result['rare_train_examples_before']} examples kept): validation "
                 "confusion matrices", fontsize=12, fontweight="bold")
    fig.savefig(path, dpi=DPI)


def binary_precision_recall(result, path):
    """Precision-recall curves of the binary experiment, with the 0.5 operating points."""
    fig = _figure(6.4, 5.0)
    ax = fig.subplots()
    for name, r in result["losses"].items():
        color = COLORS[name]
        curve = r["pr_curve"]
        ax.plot(curve["recall"], curve["precision"], color=color, lw=2,
                label=f"{LABELS[name]} (AP {r['average_precision']:.3f})")
        ax.plot([r["recall"]], [r["precision"]], marker="o", ms=9, color=color, mec="k",
                label=f"  at p=0.5: precision {r['precision']:.2f}, recall {r['recall']:.2f}")
    _style(ax, f"Digit {result['positive_digit']} vs the rest (pos_weight = "
               f"{result['pos_weight_value']:.1f}): validation\n"
               "precision-recall curves (upper right corner)", "recall", "precision")
    ax.set_xlim(0.5, 1.01)
    ax.set_ylim(0.5, 1.02)
    ax.legend(fontsize=8.5, loc="lower left")
    fig.savefig(path, dpi=DPI)


def regression_fits(result, targets_train, path):
    """Training targets with outliers, then predicted vs true on the clean test split."""
    fig = _figure(15, 4.4)
    axes = fig.subplots(1, 4)
    clean, noisy, bad = targets_train
    ax = axes[0]
    bins = np.linspace(min(noisy.min(), 0), noisy.max(), 40)
    ax.hist(noisy[~bad], bins=bins, color="#7f7f7f", label="training targets")
    ax.hist(noisy[bad], bins=bins, color="#d62728",
            label=f"outliers ({bad.sum()}, {100 * bad.mean():.0f}%)")
    _style(ax, "Training targets", "centre ink (0-1; outliers above)", "examples")
    ax.legend(fontsize=8.5)
    truth = np.asarray(result["clean_test_target"])
    preds = [np.asarray(result["losses"][n]["test_prediction"]) for n in ("mse", "l1", "huber")]
    lim = (min(truth.min(), 0, *(p.min() for p in preds)) - 0.05,
           max(truth.max(), 1, *(p.max() for p in preds)) + 0.05)
    for ax, name in zip(axes[1:], ("mse", "l1", "huber")):
        r = result["losses"][name]
        pred = np.asarray(r["test_prediction"])
        ax.scatter(truth, pred, s=9, alpha=0.55, color=COLORS[name], edgecolors="none")
        ax.plot(lim, lim, color="k", lw=1, ls="--", label="perfect")
        order = np.argsort(truth)
        line = np.poly1d(np.polyfit(truth, pred, 1))
        ax.plot(truth[order], line(truth[order]), color=COLORS[name], lw=2,
                label=f"least-squares line (mean residual {r['clean_mean_residual']:+.3f})")
        _style(ax, f"{REGRESSION_LABELS[name]}: clean MAE {r['clean_mae']:.3f}",
               "true centre ink (clean)", "predicted")
        ax.set_xlim(lim)
        ax.set_ylim(lim)
        ax.set_aspect("equal")
        ax.legend(fontsize=8.5, loc="upper left")
    fig.suptitle(f"Regression with {100 * result['outlier_fraction']:.0f}% gross outliers in "
                 "the training targets: predictions on clean held-out digits", fontsize=12,
                 fontweight="bold")
    fig.savefig(path, dpi=DPI)
