"""DistributedDataParallel with fastloss.torch's loss, run by
tests/pytorch/test_torch_training.py::test_ddp_two_processes_equal_one_process_on_the_whole_batch.

    python ddp_worker.py BATCH.npz OUT_PREFIX STEPS RANK

is one of the 2 processes (the test starts both; gloo backend,
MASTER_ADDR/MASTER_PORT from the environment: 127.0.0.1 and a free port).
Each trains the same MLP on its half of one fixed batch (BATCH.npz: x, y)
for STEPS SGD steps with fastloss.torch.CrossEntropyLoss, and writes its
final parameters, per-step losses and number of fused-kernel calls to
OUT_PREFIX<RANK>.json. The test runs ``make_model``/``steps`` in one
process on the whole batch and compares.
"""

import datetime
import json
import sys

import numpy as np
import torch
import torch.distributed as dist

WORLD = 2


def make_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(),
                               torch.nn.Linear(32, 10))


def batch():
    """128 digits images (standardised) and their labels."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x = data.data[:128].astype(np.float32)
    x = (x - x.mean(0)) / (x.std(0) + 1e-3)
    return x, data.target[:128].astype(np.int64)


def steps(model, x, y, n):
    """n SGD steps of fastloss.torch's cross-entropy; the per-step losses."""
    import fastloss.torch as ft

    criterion = ft.CrossEntropyLoss()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    losses = []
    for _ in range(n):
        loss = criterion(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def main(batch_file, out_prefix, n, rank):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=WORLD,
                            timeout=datetime.timedelta(seconds=60))
    from fastloss.torch import _kernels

    calls = []
    kernel = _kernels.cross_entropy

    def counted(*args, **kwargs):
        calls.append(1)
        return kernel(*args, **kwargs)

    _kernels.cross_entropy = counted
    model = torch.nn.parallel.DistributedDataParallel(make_model())
    data = np.load(batch_file)
    x, y = torch.from_numpy(data["x"]), torch.from_numpy(data["y"])
    half = len(y) // WORLD
    losses = steps(model, x[rank * half:(rank + 1) * half], y[rank * half:(rank + 1) * half], n)
    params = [p.detach().reshape(-1).tolist() for p in model.module.parameters()]
    with open(f"{out_prefix}{rank}.json", "w") as f:
        json.dump({"rank": rank, "params": params, "losses": losses,
                   "fused_calls": len(calls)}, f)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
