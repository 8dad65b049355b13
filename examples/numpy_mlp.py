"""A NumPy MLP learning scikit-learn's digits, with fastloss's fused cross-entropy.

fastloss gives each step's loss *and* its gradient with respect to the logits
in one call; the rest (forward, backward, SGD with momentum) is plain NumPy.
Run: python examples/numpy_mlp.py  (needs numpy, scikit-learn, fastloss).
"""

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import fastloss

rng = np.random.default_rng(0)
x, y = load_digits(return_X_y=True)
x = (x / 16.0).astype(np.float32)          # fastloss works in float32
x_train, x_val, y_train, y_val = train_test_split(x, y, test_size=0.25, stratify=y,
                                                  random_state=0)

# A 64-64-10 network: He-initialised weights, zero biases.
w1 = (rng.standard_normal((64, 64)) * np.sqrt(2 / 64)).astype(np.float32)
b1 = np.zeros(64, np.float32)
w2 = (rng.standard_normal((64, 10)) * np.sqrt(2 / 64)).astype(np.float32)
b2 = np.zeros(10, np.float32)
params = [w1, b1, w2, b2]
velocity = [np.zeros_like(p) for p in params]

criterion = fastloss.CrossEntropyLoss()     # same arguments as torch.nn.CrossEntropyLoss
batch_size, lr, momentum, epochs = 32, 0.1, 0.9, 15
grad_buf = np.empty((batch_size, 10), np.float32)   # reused: no allocation for the gradient


def forward(xb):
    h = np.maximum(xb @ w1 + b1, 0.0)
    return h, h @ w2 + b2


for epoch in range(1, epochs + 1):
    step_lr = 0.5 * lr * (1 + np.cos(np.pi * (epoch - 1) / epochs))   # cosine decay
    order = rng.permutation(len(x_train))
    losses = []
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        xb, yb = x_train[idx], y_train[idx]
        h, logits = forward(xb)
        # One fused pass: the mean loss and d(loss)/d(logits), written into grad_buf.
        loss, dlogits = criterion.loss_and_grad(logits, yb, out=grad_buf[:len(idx)])
        dh = (dlogits @ w2.T) * (h > 0)
        grads = [xb.T @ dh, dh.sum(0), h.T @ dlogits, dlogits.sum(0)]
        for p, v, g in zip(params, velocity, grads):
            v *= momentum
            v += g
            p -= step_lr * v
        losses.append(loss)
    _, val_logits = forward(x_val)
    val_loss = fastloss.cross_entropy(val_logits, y_val)
    accuracy = float(np.mean(val_logits.argmax(1) == y_val))
    print(f"epoch {epoch:2d}  train loss {np.mean(losses):.4f}  "
          f"val loss {val_loss:.4f}  val accuracy {accuracy:.3f}")

print(f"final validation accuracy: {accuracy:.3f}")
