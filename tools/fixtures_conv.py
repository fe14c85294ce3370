#!/usr/bin/env python3
"""PyTorch reference values for Backprop's convolutions: Conv2d, Conv1d, ConvTranspose2d.

Writes tests/Backprop.Tests/fixtures/conv.json, which ConvTorchTests.cs replays through
Backprop.NN.Functional. Each case names the op and its arguments (stride, padding as sizes or
"same", dilation, groups, output_padding), carries the inputs x, w and optionally b (seeded random
values, float64 unless the case says float32), the output y, the upstream gradient gy fed to
backward, and PyTorch's gradients of x, w and b (torch.autograd.grad(y, inputs, gy)). The shapes
are small and odd, and cover stride {1, 2}, padding {0, 1, same, asymmetric}, dilation {1, 2},
groups {1, 2, C}, 1x1 kernels, even kernels with "same" and non-square everything.

    apt-get install -y python3-torch && /usr/bin/python3 tools/fixtures_conv.py

Deterministic: each case's generator is seeded from its index.
Encoding: float64 as Python's shortest repr (exact), float32 with 9 significant digits.
"""
import json
import os

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "Backprop.Tests", "fixtures", "conv.json")


def enc(t):
    flat = t.detach().reshape(-1).tolist()
    if t.dtype == torch.float32:
        return [float("%.9g" % v) for v in flat]
    return [float(v) for v in flat]


CASES = [
    # op, x shape, w shape, bias, kwargs
    ("conv2d", [2, 3, 7, 6], [4, 3, 3, 3], True, dict(stride=1, padding=0, dilation=1, groups=1)),
    ("conv2d", [2, 3, 7, 6], [4, 3, 3, 3], True, dict(stride=2, padding=1, dilation=1, groups=1)),
    ("conv2d", [1, 2, 7, 8], [3, 2, 3, 2], True, dict(stride=1, padding="same", dilation=2, groups=1)),
    ("conv2d", [2, 3, 9, 7], [6, 1, 3, 3], True, dict(stride=2, padding=1, dilation=2, groups=3)),
    ("conv2d", [2, 4, 7, 5], [6, 2, 2, 3], False, dict(stride=(2, 1), padding=(1, 0), dilation=1, groups=2)),
    ("conv2d", [2, 5, 3, 5], [3, 5, 1, 1], True, dict(stride=1, padding=0, dilation=1, groups=1)),
    ("conv2d", [1, 4, 5, 3], [6, 2, 1, 1], True, dict(stride=1, padding=0, dilation=1, groups=2)),
    ("conv2d", [1, 3, 6, 7], [2, 3, 4, 4], True, dict(stride=1, padding="same", dilation=1, groups=1)),
    ("conv2d", [2, 3, 5, 5], [3, 3, 2, 2], False, dict(stride=1, padding=0, dilation=(1, 2), groups=1)),
    ("conv2d", [3, 2, 9, 9], [5, 2, 3, 3], True, dict(stride=1, padding=1, dilation=1, groups=1), torch.float32),
    ("conv2d", [2, 4, 8, 9], [4, 1, 3, 3], True, dict(stride=2, padding=1, dilation=1, groups=4), torch.float32),
    ("conv1d", [2, 4, 11], [6, 2, 3], True, dict(stride=2, padding=1, dilation=1, groups=2)),
    ("conv1d", [1, 3, 10], [2, 3, 4], True, dict(stride=1, padding="same", dilation=2, groups=1)),
    ("conv1d", [2, 3, 9], [3, 1, 5], False, dict(stride=1, padding=0, dilation=1, groups=3)),
    ("conv_transpose2d", [2, 4, 4, 5], [4, 3, 3, 3], True, dict(stride=2, padding=1, output_padding=1, groups=2, dilation=1)),
    ("conv_transpose2d", [1, 3, 5, 4], [3, 2, 2, 2], False, dict(stride=1, padding=0, output_padding=0, groups=1, dilation=2)),
    ("conv_transpose2d", [2, 2, 3, 4], [2, 3, 3, 2], True, dict(stride=(2, 3), padding=(0, 1), output_padding=(1, 2), groups=1, dilation=1)),
    ("conv_transpose2d", [2, 3, 5, 5], [3, 1, 3, 3], True, dict(stride=2, padding=1, output_padding=0, groups=3, dilation=1), torch.float32),
]


def pairs(v):
    if isinstance(v, str):
        return v
    return list(v) if isinstance(v, tuple) else v


def main():
    cases = []
    for i, spec in enumerate(CASES):
        op, xs, ws, has_bias, kw = spec[:5]
        dtype = spec[5] if len(spec) > 5 else torch.float64
        g = torch.Generator().manual_seed(1000 + i)
        x = torch.randn(xs, generator=g, dtype=torch.float64).to(dtype).requires_grad_()
        w = torch.randn(ws, generator=g, dtype=torch.float64).to(dtype).requires_grad_()
        out_ch = ws[0] if op != "conv_transpose2d" else ws[1] * kw["groups"]
        b = torch.randn([out_ch], generator=g, dtype=torch.float64).to(dtype).requires_grad_() if has_bias else None
        fn = {"conv2d": F.conv2d, "conv1d": F.conv1d, "conv_transpose2d": F.conv_transpose2d}[op]
        y = fn(x, w, b, **kw)
        gy = torch.randn(y.shape, generator=g, dtype=torch.float64).to(dtype)
        inputs = [x, w] + ([b] if has_bias else [])
        grads = torch.autograd.grad(y, inputs, gy)
        case = {
            "name": f"{i:02d}_{op}_" + "_".join(f"{k}{pairs(v)}" for k, v in kw.items()).replace(" ", ""),
            "op": op,
            "dtype": "float32" if dtype == torch.float32 else "float64",
            "args": {k: pairs(v) for k, v in kw.items()},
            "x": {"shape": xs, "values": enc(x), "grad": enc(grads[0])},
            "w": {"shape": ws, "values": enc(w), "grad": enc(grads[1])},
            "y": {"shape": list(y.shape), "values": enc(y)},
            "gy": enc(gy),
        }
        if has_bias:
            case["b"] = {"shape": [out_ch], "values": enc(b), "grad": enc(grads[2])}
        cases.append(case)
    with open(OUT, "w") as f:
        json.dump({"generator": "tools/fixtures_conv.py", "torch": torch.__version__, "cases": cases}, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {len(cases)} cases to {os.path.relpath(OUT)}")


if __name__ == "__main__":
    main()
