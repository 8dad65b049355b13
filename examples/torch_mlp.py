"""Train an MLP on scikit-learn's digits with fastloss's fused cross-entropy.

    pip install "fastloss[torch]" scikit-learn
    python examples/torch_mlp.py

The only change from a plain PyTorch script is the import of the loss:
fastloss.torch.CrossEntropyLoss is a torch.nn.CrossEntropyLoss whose forward
computes the loss and its gradient in one fused kernel call.
"""

import time

import numpy as np
import torch
from sklearn.datasets import load_digits

from fastloss.torch import CrossEntropyLoss  # was: from torch.nn import CrossEntropyLoss


def load():
    """Standardised 8x8 digit images, split 80/20: train and test tensors."""
    data = load_digits()
    x = data.data.astype(np.float32)
    x = (x - x.mean(0)) / (x.std(0) + 1e-3)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = torch.from_numpy(x[order]), torch.from_numpy(data.target[order].astype(np.int64))
    n = int(0.8 * len(y))
    return x[:n], y[:n], x[n:], y[n:]


def main(epochs=10, batch_size=64):
    torch.manual_seed(0)
    x_train, y_train, x_test, y_test = load()
    model = torch.nn.Sequential(
        torch.nn.Linear(64, 128), torch.nn.ReLU(),
        torch.nn.Linear(128, 10),
    )
    criterion = CrossEntropyLoss(label_smoothing=0.05)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)

    start = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        total = 0.0
        for idx in torch.randperm(len(y_train)).split(batch_size):
            loss = criterion(model(x_train[idx]), y_train[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        print(f"epoch {epoch + 1:2d}  train loss {total / len(y_train):.4f}")
    elapsed = time.perf_counter() - start

    model.eval()
    with torch.no_grad():
        accuracy = (model(x_test).argmax(1) == y_test).float().mean().item()
    print(f"trained in {elapsed:.2f} s")
    print(f"test accuracy: {accuracy:.4f}")


if __name__ == "__main__":
    main()
