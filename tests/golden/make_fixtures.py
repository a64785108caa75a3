#!/usr/bin/python3
"""Golden fixtures for the engine tests, computed by PyTorch (an independent implementation).

Run with Debian's own interpreter, which has python3-torch 1.13.1:
    /usr/bin/python3 tests/golden/make_fixtures.py

For every catalog model this writes tests/golden/fixtures/<model>.json holding one split
training run of two steps: client forward, server forward, loss, dL/dA, client backward and an
optimizer step on both sides. Weights, inputs and targets come from a deterministic formula
(deterministic_values below, mirrored in tests/Support/GoldenValues.cs), so
no weight files need committing. Large tensors are recorded as evenly spaced samples plus sums.

basic-block.json holds two ResNet basic blocks (projection and identity shortcut) in training mode: forward,
dL/dx, one Adam step with batch norm's running statistics, and the eval-mode forward after it.

It also writes ldl-mlp.pytorch-state.pt / ldl-mlp.pytorch-predictions.json: a state dict saved by
PyTorch and its eval predictions, which the binding must load and reproduce.
"""
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fixtures")
SAMPLES = 256          # values kept per weight tensor
ACTIVATION_SAMPLES = 2048


def fnv1a32(text):
    h = 0x811C9DC5
    for b in text.encode("utf-8"):
        h ^= b
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def deterministic_values(key, shape, bound):
    """u_j = ((j * 2654435761 + fnv1a32(key)) mod 2^32) / 2^32; value = (2 u_j - 1) * bound, as float32."""
    n = int(np.prod(shape)) if len(shape) else 1
    j = np.arange(n, dtype=np.uint64)
    mixed = (j * np.uint64(2654435761) + np.uint64(fnv1a32(key))) & np.uint64(0xFFFFFFFF)
    u = mixed.astype(np.float64) / 4294967296.0
    return torch.from_numpy(((2.0 * u - 1.0) * bound).astype(np.float32).reshape(shape))


def init_bound(key, shape):
    if len(shape) >= 2:
        fan_in = int(np.prod(shape[1:]))
        return math.sqrt(6.0 / fan_in)
    return 0.05


def deterministic_init(model, prefix):
    state = model.state_dict()
    for key, value in state.items():
        full = prefix + "." + key
        value.copy_(deterministic_values(full, list(value.shape), init_bound(full, list(value.shape))))


def vgg_block(cin, cout, convs):
    layers = []
    for i in range(convs):
        layers += [nn.Conv2d(cin if i == 0 else cout, cout, 3, padding=1), nn.ReLU()]
    return layers + [nn.MaxPool2d(2)]


# Independent PyTorch definitions of the catalog (core/Model/ModelCatalog.cs).
def models():
    return {
        "covid-ct-cnn": dict(
            input=[1, 64, 64], task="classification", batch=4,
            client=lambda: nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)),
            server=lambda: nn.Sequential(
                nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(128, 128, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(128, 256, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                nn.Flatten(), nn.Linear(1024, 128), nn.ReLU(), nn.Linear(128, 1), nn.Sigmoid()),
            loss=nn.BCELoss(), optimizer=("adam", 1e-3, 0.0, 0.0)),
        "pneumonia-cnn": dict(
            input=[1, 28, 28], task="classification", batch=4,
            client=lambda: nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)),
            server=lambda: nn.Sequential(
                nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(128, 128, 3, padding=1), nn.ReLU(),
                nn.Conv2d(128, 256, 3, padding=1), nn.ReLU(), nn.AvgPool2d(3),
                nn.Flatten(), nn.Linear(256, 64), nn.ReLU(), nn.Linear(64, 1), nn.Sigmoid()),
            loss=nn.BCELoss(), optimizer=("sgd", 0.05, 0.9, 1e-4)),
        "pneumonia-cnn-narrow": dict(
            input=[1, 28, 28], task="classification", batch=4,
            client=lambda: nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 3, 1)),
            server=lambda: nn.Sequential(
                nn.Conv2d(3, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(128, 128, 3, padding=1), nn.ReLU(),
                nn.Conv2d(128, 256, 3, padding=1), nn.ReLU(), nn.AvgPool2d(3),
                nn.Flatten(), nn.Linear(256, 64), nn.ReLU(), nn.Linear(64, 1), nn.Sigmoid()),
            loss=nn.BCELoss(), optimizer=("adam", 1e-3, 0.0, 0.0)),
        "ldl-mlp": dict(
            input=[7], task="regression", batch=16,
            client=lambda: nn.Sequential(nn.Linear(7, 64), nn.LeakyReLU(0.01)),
            server=lambda: nn.Sequential(
                nn.Linear(64, 64), nn.LeakyReLU(0.01), nn.Linear(64, 32), nn.LeakyReLU(0.01), nn.Linear(32, 1)),
            loss=nn.MSELoss(), optimizer=("adam", 1e-3, 0.0, 0.0)),
        "mura-vgg19": dict(
            input=[1, 224, 224], task="classification", batch=2,
            client=lambda: nn.Sequential(*vgg_block(1, 64, 2)),
            server=lambda: nn.Sequential(
                *vgg_block(64, 128, 2), *vgg_block(128, 256, 4), *vgg_block(256, 512, 4), *vgg_block(512, 512, 4),
                nn.AvgPool2d(7), nn.Flatten(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 1), nn.Sigmoid()),
            loss=nn.BCELoss(), optimizer=("sgd", 0.01, 0.9, 0.0)),
    }


def sample(t, count):
    flat = t.detach().reshape(-1).double()
    n = flat.numel()
    if n <= count:
        idx = list(range(n))
    else:
        idx = [k * n // count for k in range(count)]
    return {
        "shape": list(t.shape),
        "indices": None if n <= count else idx,
        "values": [float(flat[i]) for i in idx],
        "sum": float(flat.sum()),
        "max_abs": float(flat.abs().max()),
    }


def make_optimizer(params, spec):
    kind, lr, momentum, weight_decay = spec
    if kind == "adam":
        return torch.optim.Adam(params, lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=weight_decay)
    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)


def targets(task, batch):
    if task == "classification":
        return torch.tensor([[1.0 if j % 3 == 0 else 0.0] for j in range(batch)])
    return deterministic_values("target", [batch, 1], 1.0)


def golden(name, m):
    client, server = m["client"](), m["server"]()
    deterministic_init(client, "client")
    deterministic_init(server, "server")
    x = deterministic_values("input", [m["batch"]] + m["input"], 1.0)
    y = targets(m["task"], m["batch"])
    opt_c = make_optimizer(client.parameters(), m["optimizer"])
    opt_s = make_optimizer(server.parameters(), m["optimizer"])
    steps = []
    for _ in range(2):
        opt_c.zero_grad()
        opt_s.zero_grad()
        a = client(x)
        cut = a.detach().requires_grad_(True)
        p = server(cut)
        loss = m["loss"](p, y)
        loss.backward()
        a.backward(cut.grad)
        opt_c.step()
        opt_s.step()
        steps.append({
            "client_output": sample(a, ACTIVATION_SAMPLES),
            "prediction": sample(p, ACTIVATION_SAMPLES),
            "loss": float(loss),
            "cut_gradient": sample(cut.grad, ACTIVATION_SAMPLES),
            "client_weights": {k: sample(v, SAMPLES) for k, v in client.state_dict().items()},
            "server_weights": {k: sample(v, SAMPLES) for k, v in server.state_dict().items()},
        })
    kind, lr, momentum, weight_decay = m["optimizer"]
    return {
        "model": name,
        "torch_version": torch.__version__,
        "batch": m["batch"],
        "input_shape": m["input"],
        "task": m["task"],
        "optimizer": {"kind": kind, "lr": lr, "momentum": momentum, "weight_decay": weight_decay},
        "steps": steps,
    }


class BasicBlock(nn.Module):
    """torchvision.models.resnet.BasicBlock, written out (Debian's torch has no torchvision): the engine's basic_block."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


BLOCKS = [(3, 8, 2), (8, 8, 1)]   # a projection block (stride and channels change), then an identity block
BLOCK_INPUT = [3, 10, 10]
BLOCK_BATCH = 4


def residual_block():
    """Two basic blocks in training mode: forward, dL/dx for L = sum(out * g), one Adam step (weights and batch norm's
    running statistics after it), then the eval-mode forward that uses those running statistics. Only parameters take
    the formula's values; buffers start as PyTorch's (mean 0, variance 1, no batches)."""
    net = nn.Sequential(*[BasicBlock(*b) for b in BLOCKS])
    with torch.no_grad():
        for key, p in net.named_parameters():
            full = "block." + key
            p.copy_(deterministic_values(full, list(p.shape), init_bound(full, list(p.shape))))
    net.train()
    x = deterministic_values("block-input", [BLOCK_BATCH] + BLOCK_INPUT, 1.0).requires_grad_(True)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2, betas=(0.9, 0.999), eps=1e-8)
    opt.zero_grad()
    out = net(x)
    g = deterministic_values("block-output-gradient", list(out.shape), 1.0)
    loss = (out * g).sum()
    loss.backward()
    opt.step()
    net.eval()
    with torch.no_grad():
        eval_out = net(x.detach())
    return {
        "torch_version": torch.__version__,
        "blocks": [list(b) for b in BLOCKS],
        "batch": BLOCK_BATCH,
        "input_shape": BLOCK_INPUT,
        "lr": 1e-2,
        "output": sample(out, ACTIVATION_SAMPLES),
        "loss": float(loss),
        "input_gradient": sample(x.grad, ACTIVATION_SAMPLES),
        "state_after_step": {k: sample(v.double(), SAMPLES) for k, v in net.state_dict().items()},
        "eval_output": sample(eval_out, ACTIVATION_SAMPLES),
    }


def pytorch_saved_state():
    """A state dict saved by PyTorch (random init), with predictions the binding must reproduce."""
    torch.manual_seed(7)
    m = models()["ldl-mlp"]
    net = nn.Sequential(*m["client"](), *m["server"]())
    net.eval()
    torch.save(dict(net.state_dict()), os.path.join(OUT, "ldl-mlp.pytorch-state.pt"))
    x = deterministic_values("input", [8, 7], 1.0)
    with torch.no_grad():
        p = net(x)
    with open(os.path.join(OUT, "ldl-mlp.pytorch-predictions.json"), "w") as f:
        json.dump({"input_key": "input", "input_shape": [8, 7], "predictions": [float(v) for v in p.reshape(-1)]}, f, indent=1)


def main():
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    os.makedirs(OUT, exist_ok=True)
    wanted = sys.argv[1:] or list(models())
    for name, m in models().items():
        if name not in wanted:
            continue
        with open(os.path.join(OUT, name + ".json"), "w") as f:
            json.dump(golden(name, m), f, separators=(",", ":"))
        print("wrote", name, file=sys.stderr)
    pytorch_saved_state()
    if not sys.argv[1:] or "basic-block" in wanted:
        with open(os.path.join(OUT, "basic-block.json"), "w") as f:
            json.dump(residual_block(), f, separators=(",", ":"))
        print("wrote basic-block", file=sys.stderr)


if __name__ == "__main__":
    main()
