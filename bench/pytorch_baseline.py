#!/usr/bin/python3
"""PyTorch 1.13.1 baseline for engine_vs_pytorch: centralised training samples/s of a catalog model.

    /usr/bin/python3 bench/pytorch_baseline.py <model> <batch> <steps> <warmup> <threads>

Prints one JSON line: {"samples_per_s": ..., "threads": ...}. Same network, loss, optimizer and
random data as the C# side (bench/SplitFunctions.Bench/EngineVsPyTorchBench.cs).
"""
import json
import os
import sys
import time

import torch
import torch.nn as nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "golden"))
from make_fixtures import models  # noqa: E402


def main():
    name, batch, steps, warmup, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    m = models()[name]
    net = nn.Sequential(*m["client"](), *m["server"]())
    net.train()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x = torch.rand([batch] + m["input"])
    y = (torch.rand(batch, 1) > 0.5).float() if m["task"] == "classification" else torch.rand(batch, 1)
    loss_fn = m["loss"]

    def step():
        opt.zero_grad()
        loss = loss_fn(net(x), y)
        loss.backward()
        opt.step()

    for _ in range(warmup):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    elapsed = time.perf_counter() - start
    print(json.dumps({"samples_per_s": batch * steps / elapsed, "threads": torch.get_num_threads(), "torch": torch.__version__}))


if __name__ == "__main__":
    main()
