"""The four experiments of ``fastloss demo``, on scikit-learn's bundled digits.

The data (1,797 8x8 images, pixel values 0-16, no download) is split once,
stratified by digit and seeded: 60% training, 20% validation, 20% test. Every
network is a :class:`~fastloss._demo.nn.MLP` trained by mini-batch SGD
(momentum 0.9, batch 32, learning rate decaying along a half cosine); every
run of one experiment starts from the same initial weights and sees the
batches in the same order (both drawn from the seed), so the runs differ only
by their loss and learning rate.

1. ``classification``: softmax cross-entropy vs MSE between the softmax
   probabilities and the one-hot targets (the Brier score: summed over the
   classes, averaged over the batch), for each loss the learning rate with
   the best final validation accuracy among ``Config.lrs``.
2. ``imbalance``: one digit made rare in the training set (``RARE_FRACTION``
   of its examples kept); cross-entropy without and with "balanced" class
   weights (``weight=``), each with the learning rate of the best validation
   balanced accuracy (the mean of the per-digit recalls).
3. ``binary``: one digit against the other nine, BCE with logits without and
   with ``pos_weight`` = negatives / positives, each with the learning rate of
   the best validation F1.
4. ``regression``: the mean ink of the four centre pixels predicted from the
   other 60, with ``OUTLIER_FRACTION`` of the training and validation
   targets replaced by gross errors (the clean value plus 3 to 6 of the clean
   targets' standard deviations); MSE, L1 and Huber, each with the learning
   rate whose own validation loss (on the corrupted validation split) is
   lowest, then scored on the clean test split.

Metrics come from scikit-learn (accuracy, recall, precision, confusion matrix,
mean absolute error); losses and their gradients from fastloss's public API.
"""

import math
from dataclasses import dataclass, field

import numpy as np
from sklearn.datasets import load_digits
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    confusion_matrix,
    f1_score,
    mean_absolute_error,
    precision_recall_curve,
    precision_score,
    recall_score,
)
from sklearn.model_selection import train_test_split
from sklearn.utils.class_weight import compute_class_weight

import fastloss

from .nn import MLP, StepClock, softmax, train

RARE_DIGIT = 8          # experiment 2: the digit made rare
RARE_FRACTION = 0.05    # ... the share of its training examples kept
POSITIVE_DIGIT = 8      # experiment 3: the positive class
OUTLIER_FRACTION = 0.08  # experiment 4: the share of corrupted targets
CENTRE = (27, 28, 35, 36)  # experiment 4: the centre 2x2 pixels of the 8x8 image
TARGET_ACCURACY = 0.95


@dataclass
class Config:
    """Settings of one demo run (``Config.make`` for the full and quick ones)."""

    seed: int = 0
    epochs: int = 30
    lrs: tuple = (0.01, 0.03, 0.1, 0.3)
    batch_size: int = 32
    hidden: int = 64
    hidden_regression: int = 32
    quick: bool = False

    @classmethod
    def make(cls, seed=0, epochs=None, quick=False):
        if quick:
            return cls(seed=seed, epochs=epochs or 8, lrs=(0.03, 0.1), quick=True)
        return cls(seed=seed, epochs=epochs or cls.epochs)

    def total_epochs(self):
        """Epochs trained by a whole run (the progress bar's length)."""
        n_lr = len(self.lrs)
        return self.epochs * n_lr * (2 + 2 + 2 + 3)


@dataclass
class Data:
    x: np.ndarray
    y: np.ndarray
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    notes: dict = field(default_factory=dict)


def load(seed):
    """Digits scaled to [0, 1], with seeded stratified train/val/test indices."""
    images, labels = load_digits(return_X_y=True)
    x = (images / 16.0).astype(np.float32)
    y = labels.astype(np.int64)
    idx = np.arange(len(y))
    train_idx, hold = train_test_split(idx, test_size=0.4, stratify=y, random_state=seed)
    val_idx, test_idx = train_test_split(hold, test_size=0.5, stratify=y[hold],
                                         random_state=seed)
    return Data(x, y, np.sort(train_idx), np.sort(val_idx), np.sort(test_idx))


def _first_epoch_at(values, level):
    for epoch, v in enumerate(values, 1):
        if v >= level:
            return epoch
    return None


def _skip_rest_of_run(progress, cfg):
    """Advance the progress bar past the epochs a diverged run did not train."""
    if progress is not None:
        progress.advance(cfg.epochs - progress.done % cfg.epochs)


def _classifier(data, cfg, train_idx, n_out, objective, evaluate, lr, progress, label):
    """Train one network; ``evaluate(model)`` after every epoch returns a dict of metrics."""
    rng = np.random.default_rng(cfg.seed)
    model = MLP([data.x.shape[1], cfg.hidden, n_out], rng)
    history = {"train_loss": [], "step_loss": []}
    x, targets = data.x[train_idx], objective.targets(train_idx)

    def on_epoch(epoch, losses):
        history["train_loss"].append(float(np.mean(losses)))
        history["step_loss"].extend(float(v) for v in losses)
        for key, value in evaluate(model).items():
            history.setdefault(key, []).append(value)

    if progress is not None:
        progress.set_label(f"{label}, lr={lr:g}")
    clock = train(model, objective, x, targets, epochs=cfg.epochs, lr=lr,
                  batch_size=cfg.batch_size, rng=rng, on_epoch=on_epoch, progress=progress)
    return model, history, clock


def _search(data, cfg, train_idx, n_out, objective, evaluate, score, progress, label, clock):
    """One run per learning rate of ``cfg.lrs``; the run with the highest
    ``score(history)`` (metrics of the final epoch) wins. Returns
    ``(lr, model, history, {lr: score or None when it diverged})``."""
    runs = {}
    for lr in cfg.lrs:
        try:
            model, hist, c = _classifier(data, cfg, train_idx, n_out, objective, evaluate, lr,
                                         progress, label)
        except FloatingPointError:  # diverged: this learning rate is out
            _skip_rest_of_run(progress, cfg)
            continue
        clock.add(c)
        runs[lr] = (model, hist, score(hist))
    if not runs:
        raise FloatingPointError(f"{label}: every learning rate diverged")
    best = max(runs, key=lambda lr: runs[lr][2])
    scores = {f"{lr:g}": (runs[lr][2][0] if isinstance(runs[lr][2], tuple) else runs[lr][2])
              if lr in runs else None for lr in cfg.lrs}
    return best, runs[best][0], runs[best][1], scores


class _CrossEntropy:
    """Objective: fastloss's fused softmax cross-entropy on the logits."""

    def __init__(self, data, weight=None):
        self.labels = data.y
        self.loss = fastloss.CrossEntropyLoss(weight=weight)

    def targets(self, idx):
        return self.labels[idx]

    def __call__(self, logits, target, buf, clock):
        return clock.call(self.loss.loss_and_grad, logits, target, out=buf)

    def value(self, logits, target):
        return fastloss.cross_entropy(logits, target, weight=self.loss.weight)


class _SoftmaxMSE:
    """Objective: squared error of the softmax probabilities against one-hot
    targets, summed over classes and averaged over the batch; fastloss gives
    the squared error and its gradient, NumPy the chain rule through softmax."""

    def __init__(self, data):
        self.onehot = np.eye(10, dtype=np.float32)[data.y]
        self.loss = fastloss.MSELoss(reduction="sum")

    def targets(self, idx):
        return self.onehot[idx]

    def __call__(self, logits, target, buf, clock):
        p = softmax(logits)
        loss, dp = clock.call(self.loss.loss_and_grad, p, target, out=buf)
        n = len(p)
        dp *= 1.0 / n
        dz = dp - (dp * p).sum(axis=1, keepdims=True)
        dz *= p
        return loss / n, dz

    def value(self, logits, target):
        return fastloss.mse_loss(softmax(logits), target, reduction="sum") / len(logits)


def classification(data, cfg, progress=None):
    """Experiment 1: cross-entropy vs MSE, learning rate chosen on validation accuracy."""
    val = data.val
    out = {"losses": {}, "clock": StepClock(),
           "lr_chosen_by": "final validation accuracy (ties: lower validation loss)"}
    for name, objective in (("cross_entropy", _CrossEntropy(data)), ("mse", _SoftmaxMSE(data))):
        def evaluate(model, objective=objective):
            logits = model.forward(data.x[val])
            return {"val_loss": float(objective.value(logits, objective.targets(val))),
                    "val_accuracy": float(accuracy_score(data.y[val], logits.argmax(1)))}

        lr, model, hist, scores = _search(
            data, cfg, data.train, 10, objective, evaluate,
            lambda h: (h["val_accuracy"][-1], -h["val_loss"][-1]), progress,
            f"1/4 classification: {name}", out["clock"])
        test_pred = model.forward(data.x[data.test]).argmax(1)
        out["losses"][name] = {
            "lr": lr,
            "val_accuracy": hist["val_accuracy"][-1],
            "best_val_accuracy": max(hist["val_accuracy"]),
            "val_loss": hist["val_loss"][-1],
            "test_accuracy": float(accuracy_score(data.y[data.test], test_pred)),
            "epochs_to_95": _first_epoch_at(hist["val_accuracy"], TARGET_ACCURACY),
            "lr_search": scores,  # final validation accuracy per learning rate (None: diverged)
            "history": hist,
        }
    return out


def imbalance(data, cfg, progress=None):
    """Experiment 2: a rare digit, cross-entropy without and with class weights."""
    rng = np.random.default_rng(cfg.seed + 1)
    rare_idx = data.train[data.y[data.train] == RARE_DIGIT]
    n_keep = max(1, math.ceil(RARE_FRACTION * len(rare_idx)))
    kept = rng.choice(rare_idx, size=n_keep, replace=False)
    train_idx = np.sort(np.concatenate([data.train[data.y[data.train] != RARE_DIGIT], kept]))
    weight = compute_class_weight("balanced", classes=np.arange(10),
                                  y=data.y[train_idx]).astype(np.float32)
    val, y_val = data.val, data.y[data.val]
    # Accuracy as a population as imbalanced as the training set would see it:
    # each validation example of the rare digit counts n_keep / n_before.
    population = np.where(y_val == RARE_DIGIT, n_keep / len(rare_idx), 1.0)
    out = {"rare_digit": RARE_DIGIT, "rare_train_examples": int(n_keep),
           "rare_train_examples_before": int(len(rare_idx)),
           "class_weight": [round(float(w), 4) for w in weight], "losses": {},
           "lr_chosen_by": "final validation balanced accuracy (mean recall over the digits)",
           "clock": StepClock()}
    for name, w in (("unweighted", None), ("weighted", weight)):
        objective = _CrossEntropy(data, weight=w)

        def evaluate(model):
            pred = model.forward(data.x[val]).argmax(1)
            recalls = recall_score(y_val, pred, labels=np.arange(10), average=None)
            return {"val_rare_recall": float(recalls[RARE_DIGIT]),
                    "val_balanced_accuracy": float(np.mean(recalls))}

        lr, model, hist, scores = _search(
            data, cfg, train_idx, 10, objective, evaluate,
            lambda h: h["val_balanced_accuracy"][-1], progress, f"2/4 imbalance: {name}",
            out["clock"])
        pred = model.forward(data.x[val]).argmax(1)
        recalls = recall_score(y_val, pred, labels=np.arange(10), average=None)
        out["losses"][name] = {
            "lr": lr,
            "rare_recall": float(recalls[RARE_DIGIT]),
            "val_accuracy": float(accuracy_score(y_val, pred)),
            "val_accuracy_imbalanced": float(accuracy_score(y_val, pred,
                                                            sample_weight=population)),
            "val_balanced_accuracy": float(np.mean(recalls)),
            "recall_per_digit": [round(float(r), 4) for r in recalls],
            "confusion_matrix": confusion_matrix(y_val, pred, labels=np.arange(10)).tolist(),
            "lr_search": scores,  # final balanced accuracy per learning rate (None: diverged)
            "history": hist,
        }
    return out


class _BCE:
    """Objective: fastloss's BCE with logits on a (N, 1) output."""

    def __init__(self, data, pos_weight=None):
        self.binary = (data.y == POSITIVE_DIGIT).astype(np.float32)[:, None]
        self.loss = fastloss.BCEWithLogitsLoss(pos_weight=pos_weight)

    def targets(self, idx):
        return self.binary[idx]

    def __call__(self, logits, target, buf, clock):
        return clock.call(self.loss.loss_and_grad, logits, target, out=buf)


def binary(data, cfg, progress=None):
    """Experiment 3: one digit against the rest, BCE without and with pos_weight."""
    y_train = data.y[data.train] == POSITIVE_DIGIT
    n_pos, n_neg = int(y_train.sum()), int((~y_train).sum())
    pos_weight = np.array([n_neg / n_pos], np.float32)
    val = data.val
    y_val = (data.y[val] == POSITIVE_DIGIT).astype(int)
    out = {"positive_digit": POSITIVE_DIGIT, "train_positives": n_pos,
           "train_negatives": n_neg, "pos_weight_value": round(float(pos_weight[0]), 4),
           "lr_chosen_by": "final validation F1 at probability 0.5", "losses": {},
           "clock": StepClock()}
    for name, pw in (("plain", None), ("pos_weight", pos_weight)):
        objective = _BCE(data, pw)

        def evaluate(model):
            pred = (model.forward(data.x[val])[:, 0] > 0).astype(int)
            return {"val_recall": float(recall_score(y_val, pred, zero_division=0)),
                    "val_f1": float(f1_score(y_val, pred, zero_division=0))}

        lr, model, hist, scores = _search(
            data, cfg, data.train, 1, objective, evaluate, lambda h: h["val_f1"][-1],
            progress, f"3/4 binary: {name}", out["clock"])
        score = model.forward(data.x[val])[:, 0]
        pred = (score > 0).astype(int)
        prec, rec, _ = precision_recall_curve(y_val, score)
        out["losses"][name] = {
            "lr": lr,
            "precision": float(precision_score(y_val, pred, zero_division=0)),
            "recall": float(recall_score(y_val, pred, zero_division=0)),
            "f1": float(f1_score(y_val, pred, zero_division=0)),
            "average_precision": float(average_precision_score(y_val, score)),
            "val_false_negatives": int(((pred == 0) & (y_val == 1)).sum()),
            "val_false_positives": int(((pred == 1) & (y_val == 0)).sum()),
            "lr_search": scores,  # final validation F1 per learning rate (None: diverged)
            "pr_curve": {"precision": prec.tolist(), "recall": rec.tolist()},
            "history": hist,
        }
    return out


class _Regression:
    def __init__(self, loss):
        self.loss = loss

    def __call__(self, pred, target, buf, clock):
        return clock.call(self.loss.loss_and_grad, pred, target, out=buf)


REGRESSION_LOSSES = (("mse", fastloss.MSELoss), ("l1", fastloss.L1Loss),
                     ("huber", lambda: fastloss.HuberLoss(delta=1.0)))


def regression(data, cfg, progress=None):
    """Experiment 4: centre ink from the other pixels, outliers in training; MSE, L1, Huber."""
    rng = np.random.default_rng(cfg.seed + 2)
    others = np.setdiff1d(np.arange(data.x.shape[1]), CENTRE)
    x = np.ascontiguousarray(data.x[:, others])
    clean = data.x[:, list(CENTRE)].mean(axis=1).astype(np.float32)
    noisy = clean.copy()
    spread = float(clean[data.train].std())
    corrupted = []
    for part in (data.train, data.val):
        n_bad = int(round(OUTLIER_FRACTION * len(part)))
        bad = rng.choice(part, size=n_bad, replace=False)
        noisy[bad] += rng.uniform(3.0, 6.0, size=n_bad).astype(np.float32) * spread
        corrupted.append(bad)
    # Targets are scaled robustly (median, MAD) from the corrupted training
    # targets, as one would without knowing which are outliers; Huber's delta=1
    # is then about one "typical" deviation.
    centre = float(np.median(noisy[data.train]))
    scale = float(1.4826 * np.median(np.abs(noisy[data.train] - centre))) or spread
    y_scaled = ((noisy - centre) / scale).astype(np.float32)[:, None]
    val, test = data.val, data.test
    out = {"outlier_fraction": OUTLIER_FRACTION, "target": "mean ink of the centre 2x2 "
           "pixels (0-1) from the other 60 pixels",
           "train_outliers": int(len(corrupted[0])), "target_std": round(spread, 4),
           "losses": {}, "clock": StepClock(), "clean_test_target": clean[test].tolist(),
           "train_targets": (clean[data.train], noisy[data.train],
                             np.isin(data.train, corrupted[0]))}
    for name, make in REGRESSION_LOSSES:
        objective = _Regression(make())
        search = {}
        for lr in cfg.lrs:
            r = np.random.default_rng(cfg.seed)
            model = MLP([x.shape[1], cfg.hidden_regression, 1], r)
            if progress is not None:
                progress.set_label(f"4/4 regression: {name}, lr={lr:g}")
            try:
                clock = train(model, objective, x[data.train], y_scaled[data.train],
                              epochs=cfg.epochs, lr=lr, batch_size=cfg.batch_size, rng=r,
                              progress=progress)
            except FloatingPointError:  # diverged: this learning rate is out
                search[lr] = (None, math.inf)
                _skip_rest_of_run(progress, cfg)
                continue
            out["clock"].add(clock)
            val_loss = objective.loss(model.forward(x[val]), y_scaled[val])
            search[lr] = (model, val_loss if np.isfinite(val_loss) else math.inf)
        best = min(cfg.lrs, key=lambda lr: search[lr][1])
        model = search[best][0]
        pred = model.forward(x[test])[:, 0] * scale + centre
        residual = pred - clean[test]
        out["losses"][name] = {
            "lr": best,
            "clean_mae": float(mean_absolute_error(clean[test], pred)),
            "clean_rmse": float(np.sqrt(np.mean(residual ** 2))),
            "clean_mean_residual": float(residual.mean()),
            "val_loss_corrupted": float(search[best][1]),
            # validation loss per learning rate (None: diverged)
            "lr_search": {f"{lr:g}": float(search[lr][1]) if search[lr][0] is not None else None
                          for lr in cfg.lrs},
            "test_prediction": pred.tolist(),
        }
    # For reference: always predicting the clean training median.
    out["baseline_clean_mae"] = float(mean_absolute_error(
        clean[test], np.full(len(test), np.median(clean[data.train]))))
    return out
