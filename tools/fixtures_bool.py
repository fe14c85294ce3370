#!/usr/bin/env python3
"""PyTorch reference values for Backprop's bool dtype: comparisons, logical ops, masks, promotion, printing.

Writes tests/Backprop.Tests/fixtures/bool.json, which BoolDTypeTests.cs replays (dotnet test never runs
Python). Rerun only to regenerate (deterministic):

    /usr/bin/python3 tools/fixtures_bool.py

Each case has a name (the C# test maps it to a Backprop call), inputs (dtype, shape, flat values) and the
expected output (dtype name, shape, flat values; bools as true/false). Where Backprop deliberately differs
the script says so: Mean of a bool tensor (PyTorch refuses it; Backprop gives the fraction, computed here
as mask.float().mean()), and a bool tensor times a Python int (PyTorch gives int64, Backprop float32;
only float scalars are recorded).
"""
import json
import math
import os

import torch

torch.manual_seed(0)


def enc(v):
    if isinstance(v, bool):
        return v
    if isinstance(v, float):
        if math.isnan(v):
            return "NaN"
        if math.isinf(v):
            return "Infinity" if v > 0 else "-Infinity"
    return v


def tensor_json(t):
    name = {torch.bool: "bool", torch.float32: "float32", torch.float64: "float64", torch.int64: "int64"}[t.dtype]
    return {"dtype": name, "shape": list(t.shape), "values": [enc(v) for v in t.flatten().tolist()]}


cases = []


def case(name, inputs, output, **extra):
    c = {"name": name, "inputs": {k: tensor_json(v) for k, v in inputs.items()}, "output": tensor_json(output)}
    c.update(extra)
    cases.append(c)


nan, inf = float("nan"), float("inf")
a = torch.tensor([[nan, 1.0, -inf, 0.0, -0.0], [2.5, inf, -1.0, 3.0, nan], [0.5, 0.5, 7.0, -2.0, 1.0]], dtype=torch.float64)
b = torch.tensor([[1.0, 1.0, -inf, -0.0, 0.0]], dtype=torch.float64)  # broadcasts over rows
for op in ["eq", "ne", "gt", "ge", "lt", "le"]:
    case(f"compare_{op}_f64", {"a": a, "b": b}, getattr(torch, op)(a, b))
    case(f"compare_{op}_f32", {"a": a.float(), "b": b.float()}, getattr(torch, op)(a.float(), b.float()))
big = torch.tensor([2**53 + 1, -5, 2**62, 7], dtype=torch.int64)
big2 = torch.tensor([2**53, -5, 2**62 + 1, 8], dtype=torch.int64)
for op in ["eq", "lt"]:
    case(f"compare_{op}_i64", {"a": big, "b": big2}, getattr(torch, op)(big, big2))
case("compare_gt_scalar", {"a": a}, a > 0.5, scalar=0.5)

p = torch.rand(3, 4) > 0.5
q = torch.rand(4) > 0.5
case("logical_and", {"a": p, "b": q}, p & q)
case("logical_or", {"a": p, "b": q}, p | q)
case("logical_xor", {"a": p, "b": q}, p ^ q)
case("logical_not", {"a": p}, ~p)
x = torch.tensor([[nan, 0.0, -2.0], [0.0, 3.0, -0.0]], dtype=torch.float32)
case("logical_not_float", {"a": x}, torch.logical_not(x))
case("to_bool", {"a": x}, x.bool())
case("isnan", {"a": x}, x.isnan())
case("isfinite", {"a": torch.tensor([nan, inf, -inf, 1.0, 0.0])}, torch.tensor([nan, inf, -inf, 1.0, 0.0]).isfinite())

m = torch.rand(4, 5) > 0.4
case("sum_all", {"m": m}, m.sum())
case("sum_dim1", {"m": m}, m.sum(1))
case("mean_all", {"m": m}, m.float().mean())  # PyTorch refuses m.mean(); Backprop gives this fraction
case("mean_dim0_keep", {"m": m}, m.float().mean(0, keepdim=True))
case("any", {"m": m}, m.any())
case("all", {"m": m}, m.all())
case("to_float", {"m": m}, m.float())
case("to_int64", {"m": m}, m.long())

y = torch.randn(4, 5)
case("mul_mask_float", {"m": m, "x": y}, m * y)
case("add_float_mask", {"x": y, "m": m}, y + m)
# m - y: PyTorch refuses subtraction with a bool operand; so does Backprop (tested in C#)
case("div_float_mask", {"x": y, "m": m}, y / m)
case("mul_mask_scalar", {"m": m}, m * 2.5, scalar=2.5)
case("add_mask_mask", {"a": p, "b": q}, p + q)
case("mul_mask_mask", {"a": p, "b": q}, p * q)
case("div_mask_mask", {"a": p, "b": q}, p / q)
li = torch.tensor([[1, -2, 3, 4, 5]] * 4, dtype=torch.int64)
case("mul_mask_int64", {"m": m, "x": li}, m * li)

case("where", {"m": m, "x": y}, torch.where(m, y, -y))
case("masked_fill", {"x": y, "m": m[0]}, y.masked_fill(m[0], -1.5))
case("masked_select", {"x": y, "m": m}, y[m])
case("mask_rows", {"x": y, "m": m[:, 0]}, y[m[:, 0]])
z = y.clone()
z[m] = 0.25
case("masked_assign_scalar", {"x": y, "m": m}, z)
z = y.clone()
rows = m[:, 1]
z[rows] = torch.arange(5, dtype=torch.float32)
case("masked_assign_row", {"x": y, "m": rows}, z, value=list(range(5)))

prints = {
    "[True, False]": str(torch.tensor([True, False])),
    "[[True, False], [False, True]]": str(torch.tensor([[True, False], [False, True]])),
    "True": str(torch.tensor(True)),
}

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "Backprop.Tests", "fixtures", "bool.json")
with open(out, "w") as f:
    json.dump({"torch": torch.__version__, "cases": cases, "prints": prints}, f, indent=1)
    f.write("\n")
print(f"wrote {len(cases)} cases to {os.path.normpath(out)}")
