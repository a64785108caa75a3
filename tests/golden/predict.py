#!/usr/bin/python3
"""Loads a state dict saved by the SplitFunctions engine into PyTorch and predicts.

    /usr/bin/python3 tests/golden/predict.py <model> <state.pt> <input.f32> <batch> <output.f32>

The network is rebuilt from make_fixtures.py's independent definitions (client then server as one
nn.Sequential is not what the engine saves, so the state holds one part: 'client' or 'server'
picked by the model name suffix, e.g. ldl-mlp:client). load_state_dict(strict=True) must succeed.
"""
import sys

import numpy as np
import torch

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from make_fixtures import models  # noqa: E402


def main():
    spec, state_path, input_path, batch, output_path = sys.argv[1:6]
    name, part = spec.split(":")
    m = models()[name]
    net = m[part]()
    state = torch.load(state_path)
    net.load_state_dict(state, strict=True)
    net.eval()
    shape = [int(batch)] + (m["input"] if part == "client" else [int(d) for d in sys.argv[6].split(",")])
    x = torch.from_numpy(np.fromfile(input_path, dtype="<f4").reshape(shape))
    with torch.no_grad():
        y = net(x)
    y.numpy().astype("<f4").tofile(output_path)


if __name__ == "__main__":
    main()
