"""``fastloss demo`` (fastloss/_demo/) and the scripts in examples/.

The demo runs once, ``--quick``, in a subprocess (about 5 s); the tests read
its files and output. The hand-written MLP backward pass and the softmax-MSE
chain rule are checked against central differences, and the message for a
missing dependency is checked by hiding the module.
"""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from numpy.testing import assert_allclose

pytest.importorskip("sklearn", reason="the demo tests need scikit-learn (the test extra has it)")
pytest.importorskip("matplotlib", reason="the demo tests need matplotlib (the test extra has it)")

from fastloss import _demo
from fastloss.__main__ import main
from fastloss._demo import experiments, nn

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = os.path.join(ROOT, "examples")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

REQUIRED = ("classification.cross_entropy.val_accuracy", "classification.mse.val_accuracy",
            "imbalance.unweighted.rare_recall", "imbalance.weighted.rare_recall",
            "regression.mse.clean_mae", "regression.l1.clean_mae", "regression.huber.clean_mae")


def _run(cmd, cwd, timeout=300):
    # cwd outside the repository: `python -m fastloss` must import the
    # installed package, not the source folder (which has no compiled extension).
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    err = proc.stderr if len(proc.stderr) < 8000 else \
        f"{proc.stderr[:4000]}\n[...]\n{proc.stderr[-4000:]}"
    assert proc.returncode == 0, (f"{cmd} exited {proc.returncode}\n--- stdout\n"
                                  f"{proc.stdout[-4000:]}\n--- stderr\n{err}")
    return proc


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("demo")
    out = work / "out"
    proc = _run([sys.executable, "-m", "fastloss", "demo", "--quick", "--out", str(out)],
                cwd=work)
    with open(out / "summary.json") as f:
        summary = json.load(f)
    return {"out": out, "stdout": proc.stdout, "stderr": proc.stderr, "summary": summary}


def _dig(summary, dotted):
    value = summary
    for key in dotted.split("."):
        value = value[key]
    return value


def test_quick_demo_writes_the_figures_and_summary(quick_run):
    out = quick_run["out"]
    assert sorted(os.listdir(out)) == sorted(list(_demo.FIGURES) + ["summary.json"])
    assert quick_run["summary"]["figures"] == list(_demo.FIGURES)
    from matplotlib.image import imread

    for name in _demo.FIGURES:
        with open(out / name, "rb") as f:
            assert f.read(8) == PNG_MAGIC, name
        image = imread(out / name)
        assert image.shape[0] >= 400 and image.shape[1] >= 600, (name, image.shape)
        assert image[..., :3].std() > 0.05, f"{name} looks blank"


def test_summary_has_the_headline_numbers_in_range(quick_run):
    s = quick_run["summary"]
    for key in REQUIRED:
        value = _dig(s, key)
        assert isinstance(value, float) and math.isfinite(value), (key, value)
    for key in REQUIRED[:4]:
        assert 0.0 <= _dig(s, key) <= 1.0, key
    for key in REQUIRED[4:]:
        assert 0.0 < _dig(s, key) < 1.0, key   # the target (centre ink) lies in [0, 1]
    # a quick run still trains a good digit classifier
    assert s["classification"]["cross_entropy"]["val_accuracy"] >= 0.9
    assert s["classification"]["cross_entropy"]["test_accuracy"] >= 0.9
    e95 = s["classification"]["cross_entropy"]["epochs_to_95"]
    assert e95 is None or 1 <= e95 <= s["settings"]["epochs"]
    assert s["settings"]["quick"] is True and s["settings"]["seeds"] == [0]
    assert s["settings"]["split"] == {"train": 1078, "validation": 359, "test": 360}
    # every regression model beats predicting a constant on clean data
    for loss in ("mse", "l1", "huber"):
        assert s["regression"][loss]["clean_mae"] < s["regression"]["baseline_clean_mae"]


def test_summary_numbers_agree_with_each_other(quick_run):
    s = quick_run["summary"]
    imb = s["imbalance"]
    rare, n_val = imb["rare_digit"], s["settings"]["split"]["validation"]
    for name in ("unweighted", "weighted"):
        cm = np.array(imb[name]["confusion_matrix"])
        assert cm.shape == (10, 10) and cm.sum() == n_val
        assert_allclose(imb[name]["rare_recall"], cm[rare, rare] / cm[rare].sum())
        assert_allclose(imb[name]["val_accuracy"], np.trace(cm) / n_val)
    assert imb["rare_train_examples"] == math.ceil(0.05 * imb["rare_train_examples_before"])
    b = s["binary"]
    assert_allclose(b["pos_weight_value"], b["train_negatives"] / b["train_positives"],
                    rtol=1e-5)
    for name in ("plain", "pos_weight"):
        r = b[name]
        for metric in ("precision", "recall", "f1", "average_precision"):
            assert 0.0 <= r[metric] <= 1.0
    for exp, losses in (("classification", ("cross_entropy", "mse")),
                        ("regression", ("mse", "l1", "huber"))):
        for loss in losses:
            assert s[exp][loss]["lr"] in s["settings"]["learning_rates"]
    hist = s["classification"]["cross_entropy"]["history"]
    assert len(hist["val_accuracy"]) == len(hist["train_loss"]) == s["settings"]["epochs"]
    assert hist["val_accuracy"][-1] == s["classification"]["cross_entropy"]["val_accuracy"]


def test_lessons_are_reported_as_computed(quick_run):
    s = quick_run["summary"]
    cls, imb, reg = s["classification"], s["imbalance"], s["regression"]
    expected = {
        "ce_reaches_95": cls["cross_entropy"]["val_accuracy"] >= 0.95,
        "ce_beats_mse": cls["cross_entropy"]["val_accuracy"] > cls["mse"]["val_accuracy"],
        "ce_faster_than_mse": (cls["cross_entropy"]["epochs_to_95"] or math.inf)
        < (cls["mse"]["epochs_to_95"] or math.inf),
        "weights_raise_rare_recall": imb["weighted"]["rare_recall"]
        > imb["unweighted"]["rare_recall"],
        "pos_weight_raises_recall": s["binary"]["pos_weight"]["recall"]
        > s["binary"]["plain"]["recall"],
        "l1_beats_mse": reg["l1"]["clean_mae"] < reg["mse"]["clean_mae"],
        "huber_beats_mse": reg["huber"]["clean_mae"] < reg["mse"]["clean_mae"],
    }
    for name, value in expected.items():
        assert s["lessons"][name] is value, name
        assert s["lesson_details"][name]["holds"] is value
        assert s["lesson_details"][name]["seeds_held"] == int(value)
    assert set(s["lessons"]) == set(expected)
    # the stdout table prints each verdict
    for d in s["lesson_details"].values():
        assert f"[{'yes' if d['holds'] else 'NO '}] {d['lesson']}" in quick_run["stdout"]


def test_timing_and_table(quick_run):
    s = quick_run["summary"]
    t = s["timing"]["training_steps"]
    assert t["steps"] > 0 and t["fastloss_s"] > 0 and t["rest_of_step_s"] > 0
    assert 0.0 < t["fastloss_fraction"] < 1.0
    parts = [s["timing"][k]["steps"] for k in ("classification", "imbalance", "binary",
                                              "regression")]
    assert sum(parts) == t["steps"]
    assert 0 < s["timing"]["wall_s"] < 300
    stdout = quick_run["stdout"]
    assert stdout.splitlines()[0].startswith(f"fastloss {s['fastloss']['version']} demo (")
    for text in ("experiment", "classification", "imbalance", "binary", "regression",
                 "rare_recall", "clean_mae", "inside fastloss"):
        assert text in stdout, text
    # the progress goes to stderr (not a terminal here: plain lines), not stdout
    assert "demo: 100% after" in quick_run["stderr"]
    assert "demo:" not in stdout


@pytest.mark.parametrize("module,dist", [("sklearn", "scikit-learn"),
                                         ("matplotlib", "matplotlib")])
def test_missing_dependency_says_what_to_install(monkeypatch, capsys, tmp_path, module, dist):
    monkeypatch.setitem(sys.modules, module, None)   # makes `import module` fail
    out = tmp_path / "never"
    assert main(["demo", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"not installed here: {dist}." in err
    assert 'pip install "fastloss[demo]"' in err
    assert "pip install scikit-learn matplotlib threadpoolctl" in err
    assert not out.exists()


def test_demo_arguments_are_checked(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--epochs", "0"])
    assert exc.value.code == 2
    assert "--epochs: must be at least 1, got 0" in capsys.readouterr().err


def test_mlp_backward_matches_central_differences():
    rng = np.random.default_rng(3)
    model = nn.MLP([5, 7, 4], rng, dtype=np.float64)
    for b in model.biases:
        b[:] = rng.standard_normal(b.shape)   # no ReLU kinks at exactly 0
    x = rng.standard_normal((6, 5))
    upstream = rng.standard_normal((6, 4))   # loss = sum(upstream * output)
    model.forward(x)
    grads = [g.copy() for g in model.backward(upstream)]
    eps = 1e-6
    for p, g in zip(model.params, grads):
        numeric = np.zeros_like(p)
        for i in np.ndindex(p.shape):
            old = p[i]
            p[i] = old + eps
            up = np.sum(upstream * model.forward(x))
            p[i] = old - eps
            down = np.sum(upstream * model.forward(x))
            p[i] = old
            numeric[i] = (up - down) / (2 * eps)
        assert_allclose(g, numeric, rtol=1e-6, atol=1e-8)


def test_softmax_mse_gradient_matches_central_differences():
    data = experiments.load(0)
    objective = experiments._SoftmaxMSE(data)
    rng = np.random.default_rng(4)
    logits = rng.standard_normal((8, 10)).astype(np.float32)
    target = objective.targets(data.train[:8])
    loss, grad = objective(logits, target, np.empty_like(logits), nn.StepClock())
    assert_allclose(loss, objective.value(logits, target), rtol=1e-6)
    x64 = logits.astype(np.float64)

    def brier(z):
        e = np.exp(z - z.max(axis=1, keepdims=True))
        p = e / e.sum(axis=1, keepdims=True)
        return np.sum((p - target) ** 2) / len(z)

    assert_allclose(loss, brier(x64), rtol=1e-5)
    numeric = np.zeros_like(x64)
    eps = 1e-6
    for i in np.ndindex(x64.shape):
        up, down = x64.copy(), x64.copy()
        up[i] += eps
        down[i] -= eps
        numeric[i] = (brier(up) - brier(down)) / (2 * eps)
    assert_allclose(grad, numeric, rtol=1e-4, atol=1e-6)


def test_training_is_deterministic_for_a_seed():
    data = experiments.load(5)
    objective = experiments._CrossEntropy(data)

    def weights():
        rng = np.random.default_rng(5)
        model = nn.MLP([64, 16, 10], rng)
        nn.train(model, objective, data.x[data.train], data.y[data.train], epochs=2, lr=0.05,
                 batch_size=32, rng=rng)
        return model.params

    for a, b in zip(weights(), weights()):
        assert np.array_equal(a, b)


def _examples():
    return sorted(f for f in os.listdir(EXAMPLES) if f.endswith(".py"))


def test_examples_folder_has_the_numpy_example():
    assert "numpy_mlp.py" in _examples()


@pytest.mark.parametrize("script", _examples() if os.path.isdir(EXAMPLES) else ["(missing)"])
def test_example_runs(script, tmp_path):
    path = os.path.join(EXAMPLES, script)
    with open(path) as f:
        text = f.read()
    assert len(text.splitlines()) < 80, f"{script} should stay under 80 lines"
    if "import torch" in text:
        pytest.importorskip("torch")
    proc = _run([sys.executable, path], cwd=tmp_path, timeout=120)
    last = proc.stdout.strip().splitlines()[-1]
    # every example ends with its held-out accuracy
    assert last.startswith(("final validation accuracy: ", "test accuracy: ")), last
    assert float(last.rsplit(" ", 1)[1]) >= 0.9, last
