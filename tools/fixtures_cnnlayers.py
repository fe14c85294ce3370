#!/usr/bin/env python3
"""PyTorch reference values for the non-convolution CNN layers: pooling, batch norm, flatten/unflatten.

Writes tests/Backprop.Tests/fixtures/cnnlayers.json, replayed by tests/Backprop.Tests/CnnLayerTests.cs.
Committed, so `dotnet test` never runs Python; regenerate (deterministic output) with

    /usr/bin/python3 tools/fixtures_cnnlayers.py

Cases
-----
pool: max_pool2d / avg_pool2d / adaptive_avg_pool2d over a seeded float64 input at odd sizes for a
grid of kernel, stride, padding, dilation (max) and count_include_pad (avg): the output and the
gradient of sum(output * upstream) with respect to the input (upstream seeded too). One max case
has integer-valued input (ties: the first index of a window wins) and the argmax indices.

batchnorm: BatchNorm1d ([N, C] and [N, C, L]) and BatchNorm2d in float64 with seeded weight and bias,
momentum 0.1 or None (cumulative average): three training steps on seeded inputs, each with its output
and the gradients of sum(output * upstream) for input, weight and bias; then the running statistics
and num_batches_tracked; then an evaluation-mode output and input gradient on a fresh input.

state_dict: the keys, shapes and dtypes of a model made of these layers, in PyTorch's order.
"""
import json
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "Backprop.Tests", "fixtures", "cnnlayers.json")
torch.set_default_dtype(torch.float64)


def t(x):
    return {"shape": list(x.shape), "values": [float(v) if x.dtype.is_floating_point else int(v) for v in x.detach().reshape(-1).tolist()]}


def gen(seed):
    return torch.Generator().manual_seed(seed)


def randn(seed, *shape):
    return torch.randn(*shape, generator=gen(seed))


pool = []
seed = 100
for (k, s, p, d) in [(2, None, 0, 1), (3, 2, 1, 1), (3, 1, 1, 2), ((2, 3), (2, 1), (1, 0), (1, 2)), (3, 3, 0, 1), (1, 2, 0, 1)]:
    seed += 1
    x = randn(seed, 2, 3, 7, 6).requires_grad_()
    y, idx = F.max_pool2d(x, k, s, p, d, return_indices=True)
    up = randn(seed + 1000, *y.shape)
    (g,) = torch.autograd.grad(y, x, up)
    pool.append({"op": "max", "kernel": k, "stride": s, "padding": p, "dilation": d, "x": t(x), "up": t(up), "y": t(y), "indices": t(idx), "dx": t(g)})
# ties: integer values, so windows hold equal maxima
x = torch.randint(0, 3, (1, 2, 5, 5), generator=gen(7)).double().requires_grad_()
y, idx = F.max_pool2d(x, 2, 1, 0, 1, return_indices=True)
up = randn(1007, *y.shape)
(g,) = torch.autograd.grad(y, x, up)
pool.append({"op": "max", "kernel": 2, "stride": 1, "padding": 0, "dilation": 1, "x": t(x), "up": t(up), "y": t(y), "indices": t(idx), "dx": t(g)})
for (k, s, p, cip) in [(2, None, 0, True), (3, 2, 1, True), (3, 2, 1, False), ((3, 2), (1, 2), (1, 1), True), ((3, 2), (1, 2), (1, 1), False), (5, 1, 2, False)]:
    seed += 1
    x = randn(seed, 2, 3, 7, 6).requires_grad_()
    y = F.avg_pool2d(x, k, s, p, count_include_pad=cip)
    up = randn(seed + 1000, *y.shape)
    (g,) = torch.autograd.grad(y, x, up)
    pool.append({"op": "avg", "kernel": k, "stride": s, "padding": p, "count_include_pad": cip, "x": t(x), "up": t(up), "y": t(y), "dx": t(g)})
for out in [(1, 1), (3, 2), (4, 5), (7, 6), (5, 4)]:
    seed += 1
    x = randn(seed, 2, 3, 7, 6).requires_grad_()
    y = F.adaptive_avg_pool2d(x, out)
    up = randn(seed + 1000, *y.shape)
    (g,) = torch.autograd.grad(y, x, up)
    pool.append({"op": "adaptive", "output_size": list(out), "x": t(x), "up": t(up), "y": t(y), "dx": t(g)})

batchnorm = []
for name, shape, momentum in [("1d", (6, 3), 0.1), ("1d", (4, 3, 5), 0.1), ("2d", (3, 4, 5, 3), 0.1), ("2d", (2, 3, 3, 5), None)]:
    seed += 10
    c = shape[1]
    m = (nn.BatchNorm1d if name == "1d" else nn.BatchNorm2d)(c, momentum=momentum)
    with torch.no_grad():
        m.weight.copy_(randn(seed, c) * 0.5 + 1)
        m.bias.copy_(randn(seed + 1, c) * 0.5)
    case = {"kind": name, "shape": list(shape), "momentum": momentum, "weight": t(m.weight), "bias": t(m.bias), "steps": []}
    m.train()
    for step in range(3):
        x = (randn(seed + 10 + step, *shape) * (1 + step) + step).requires_grad_()
        y = m(x)
        up = randn(seed + 20 + step, *shape)
        gx, gw, gb = torch.autograd.grad(y, [x, m.weight, m.bias], up)
        case["steps"].append({"x": t(x), "up": t(up), "y": t(y), "dx": t(gx), "dweight": t(gw), "dbias": t(gb)})
    case["running_mean"] = t(m.running_mean)
    case["running_var"] = t(m.running_var)
    case["num_batches_tracked"] = int(m.num_batches_tracked)
    m.eval()
    x = randn(seed + 30, *shape).requires_grad_()
    y = m(x)
    up = randn(seed + 31, *shape)
    gx, gw, gb = torch.autograd.grad(y, [x, m.weight, m.bias], up)
    case["eval"] = {"x": t(x), "up": t(up), "y": t(y), "dx": t(gx), "dweight": t(gw), "dbias": t(gb)}
    batchnorm.append(case)

torch.set_default_dtype(torch.float32)  # layers as users make them: float32 parameters, int64 count
model = nn.Sequential(nn.BatchNorm2d(3), nn.MaxPool2d(2), nn.AvgPool2d(2), nn.AdaptiveAvgPool2d(1), nn.Dropout2d(0.1), nn.Flatten(),
                      nn.BatchNorm1d(3), nn.Unflatten(1, (3, 1)), nn.BatchNorm1d(3, affine=False))
state_dict = [{"name": k, "shape": list(v.shape), "dtype": str(v.dtype).replace("torch.", "")} for k, v in model.state_dict().items()]

with open(OUT, "w") as f:
    json.dump({"torch": torch.__version__, "pool": pool, "batchnorm": batchnorm, "state_dict": state_dict}, f, separators=(",", ":"))
print(f"wrote {OUT}: {len(pool)} pooling cases, {len(batchnorm)} batch-norm cases")
