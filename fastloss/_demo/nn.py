"""A small multilayer perceptron in NumPy, trained with fastloss's fused losses.

Everything here is float32, hand-written and deterministic for a given seed:

* :class:`MLP`: dense layers with ReLU between them; ``forward`` keeps what
  ``backward`` needs, ``backward`` takes d(loss)/d(output) and fills
  preallocated gradient arrays.
* :class:`SGD`: stochastic gradient descent with (heavy-ball) momentum.
* :func:`train`: mini-batch epochs over shuffled data, the learning rate
  decaying along a half cosine (as PyTorch's ``CosineAnnealingLR``). The loss and its gradient
  with respect to the network's output come from one fastloss call inside the
  ``objective``, timed by :meth:`StepClock.call`, apart from the rest of the
  step (forward, backward, update).
* :class:`Progress`: a one-line progress bar on stderr (no dependency).

Only fastloss's public API is used.
"""

import math
import shutil
import sys
import time

import numpy as np

__all__ = ["MLP", "SGD", "StepClock", "train", "Progress", "softmax"]


def softmax(z):
    """Row-wise softmax of a 2-D float32 array (a new array)."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    e /= e.sum(axis=1, keepdims=True)
    return e


class MLP:
    """Dense layers ``sizes[0] -> sizes[1] -> ... -> sizes[-1]``, ReLU between them.

    Weights use He initialisation from ``rng`` (a ``numpy.random.Generator``),
    biases start at 0; the last layer is linear (its output is the logits or
    the regression prediction). ``dtype`` is float32 for fastloss; the tests
    check the gradients in float64.
    """

    def __init__(self, sizes, rng, dtype=np.float32):
        self.weights, self.biases = [], []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            scale = np.sqrt(2.0 / fan_in)
            self.weights.append((rng.standard_normal((fan_in, fan_out)) * scale)
                                .astype(dtype))
            self.biases.append(np.zeros(fan_out, dtype))
        self.grads = [np.zeros_like(p) for p in self.params]
        self._acts = []

    @property
    def params(self):
        """Weights and biases, interleaved (the order of :attr:`grads`)."""
        return [p for pair in zip(self.weights, self.biases) for p in pair]

    def forward(self, x):
        """The network's output for a batch ``x`` of shape (N, sizes[0])."""
        self._acts = [x]
        last = len(self.weights) - 1
        for k, (w, b) in enumerate(zip(self.weights, self.biases)):
            x = x @ w
            x += b
            if k < last:
                np.maximum(x, 0.0, out=x)
            self._acts.append(x)
        return x

    def backward(self, grad_out):
        """Fill :attr:`grads` from d(loss)/d(output) of the last :meth:`forward`."""
        g = grad_out
        for k in range(len(self.weights) - 1, -1, -1):
            a_in = self._acts[k]
            np.matmul(a_in.T, g, out=self.grads[2 * k])
            np.sum(g, axis=0, out=self.grads[2 * k + 1])
            if k:
                g = g @ self.weights[k].T
                g *= self._acts[k] > 0           # ReLU's derivative
        return self.grads


class SGD:
    """``v = momentum * v + g``; ``p -= lr * v`` (PyTorch's SGD with momentum)."""

    def __init__(self, params, lr, momentum=0.9):
        self.params, self.lr, self.momentum = params, float(lr), float(momentum)
        self.velocity = [np.zeros_like(p) for p in params]

    def step(self, grads):
        for p, v, g in zip(self.params, self.velocity, grads):
            v *= self.momentum
            v += g
            p -= self.lr * v


class StepClock:
    """Seconds spent in training steps, and the part of them inside fastloss."""

    def __init__(self):
        self.fastloss_s = 0.0
        self.step_s = 0.0
        self.steps = 0

    def call(self, fn, *args, **kwargs):
        """``fn(*args, **kwargs)``, its time added to :attr:`fastloss_s`."""
        t0 = time.perf_counter()
        result = fn(*args, **kwargs)
        self.fastloss_s += time.perf_counter() - t0
        return result

    def add(self, other):
        self.fastloss_s += other.fastloss_s
        self.step_s += other.step_s
        self.steps += other.steps

    def as_dict(self):
        rest = max(self.step_s - self.fastloss_s, 0.0)
        return {
            "steps": self.steps,
            "fastloss_s": round(self.fastloss_s, 4),
            "rest_of_step_s": round(rest, 4),
            "fastloss_fraction": round(self.fastloss_s / self.step_s, 4) if self.step_s else 0.0,
            "fastloss_us_per_step": (round(1e6 * self.fastloss_s / self.steps, 2)
                                     if self.steps else 0.0),
        }


def train(model, objective, x, y, *, epochs, lr, batch_size, rng, on_epoch=None,
          clock=None, progress=None, momentum=0.9):
    """Mini-batch SGD with momentum over ``epochs`` passes of shuffled ``(x, y)``.

    Parameters
    ----------
    model : MLP
    objective : callable
        ``objective(output, target, grad_buffer, clock) -> (loss, d loss / d output)``:
        makes the step's fastloss call through ``clock.call`` (the buffer is
        preallocated for its ``out=``).
    x, y : ndarray
        Training inputs (float32) and targets (any dtype the objective takes).
    epochs, lr, batch_size : the schedule; the learning rate decays from ``lr``
        to 0 along a half cosine over all the steps.
    rng : numpy.random.Generator
        Draws the batch order of each epoch.
    on_epoch : callable, optional
        ``on_epoch(epoch, step_losses)`` after each epoch (1-based), with the
        per-step mean losses of that epoch.
    clock : StepClock, optional
        Accumulates step time (and, through the objective, the time inside fastloss).
    progress : Progress, optional
        Advanced by one per epoch.
    """
    opt = SGD(model.params, lr, momentum)
    n = len(x)
    total_steps = epochs * -(-n // batch_size)
    step = 0
    out_dim = model.weights[-1].shape[1]
    grad_buf = np.empty((batch_size, out_dim), np.float32)
    clock = clock if clock is not None else StepClock()
    perf = time.perf_counter
    for epoch in range(1, epochs + 1):
        order = rng.permutation(n)
        losses = []
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            t0 = perf()
            # cosine decay of the learning rate to 0 over the run (as PyTorch's
            # CosineAnnealingLR per step): the last epochs settle instead of
            # jumping, so the final-epoch metrics compare like with like
            opt.lr = 0.5 * lr * (1.0 + math.cos(math.pi * step / total_steps))
            step += 1
            out = model.forward(x[idx])
            loss, grad = objective(out, y[idx], grad_buf[:len(idx)], clock)
            model.backward(grad)
            opt.step(model.grads)
            clock.step_s += perf() - t0
            clock.steps += 1
            losses.append(loss)
        if not np.isfinite(losses[-1]):
            raise FloatingPointError(f"training diverged at epoch {epoch} (lr={lr:g})")
        if on_epoch is not None:
            on_epoch(epoch, losses)
        if progress is not None:
            progress.advance()
    return clock


class Progress:
    """A one-line progress bar on stderr, redrawn at most ten times a second.

    When stderr is not a terminal (a log, a test), it prints a plain line at
    every tenth of the way instead of redrawing.
    """

    def __init__(self, total, stream=None, enabled=True, width=28):
        self.total, self.done, self.width = max(int(total), 1), 0, width
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.label = ""
        self.prefix = ""   # shown before every label (e.g. the seed)
        self.start = time.perf_counter()
        self._last_draw = 0.0
        self._last_tenth = -1

    def set_label(self, label):
        self.label = f"{self.prefix}: {label}" if self.prefix else label
        self._draw(force=self.tty)

    def advance(self, n=1):
        self.done = min(self.done + n, self.total)
        self._draw()

    def _draw(self, force=False):
        if not self.enabled:
            return
        now = time.perf_counter()
        frac = self.done / self.total
        elapsed = now - self.start
        if self.tty:
            if not force and now - self._last_draw < 0.1 and self.done < self.total:
                return
            filled = int(round(frac * self.width))
            bar = "#" * filled + "-" * (self.width - filled)
            line = f"demo [{bar}] {100 * frac:3.0f}% {elapsed:5.1f}s  {self.label}"
            cols = shutil.get_terminal_size((100, 20)).columns - 1   # never wrap
            self.stream.write("\r" + line[:cols].ljust(cols))
            self.stream.flush()
            self._last_draw = now
        else:
            tenth = int(frac * 10)
            if tenth > self._last_tenth:
                self._last_tenth = tenth
                self.stream.write(f"demo: {100 * frac:3.0f}% after {elapsed:.1f} s  "
                                  f"{self.label}\n")
                self.stream.flush()

    def close(self):
        if self.enabled and self.tty:
            self.done = self.total
            self._draw(force=True)
            self.stream.write("\n")
            self.stream.flush()
