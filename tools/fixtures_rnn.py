#!/usr/bin/env python3
"""PyTorch reference values for Backprop's recurrent layers (Rnn, Lstm, Gru).

Writes tests/Backprop.Tests/fixtures/rnn.json, replayed by RecurrentFixtureTests.cs (so `dotnet test`
never runs Python). Each case builds torch.nn.RNN / LSTM / GRU (batch_first=True, tanh for the RNN)
in float64 with PyTorch's own initialization, feeds a seeded random input and (optionally) initial
states, and records: every parameter under PyTorch's state-dict name (the C# side loads them by name,
which also checks that the names and layouts interchange), the outputs, the final states, and the
gradients of L = <r_y, y> + <r_h, h_n> (+ <r_c, c_n>) with respect to the input, the initial states and
every parameter, for seeded random projections r. Values are Python's shortest float repr (exact).

    /usr/bin/python3 tools/fixtures_rnn.py
"""
import json
import os

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "Backprop.Tests", "fixtures", "rnn.json")

CASES = [
    # kind, batch, steps, input, hidden, layers, bias, initial state
    ("rnn", 2, 5, 3, 4, 1, True, False),
    ("rnn", 3, 4, 2, 5, 2, True, True),
    ("lstm", 2, 5, 3, 4, 1, True, False),
    ("lstm", 3, 4, 2, 5, 2, True, True),
    ("lstm", 1, 6, 4, 3, 1, False, True),
    ("gru", 2, 5, 3, 4, 1, True, False),
    ("gru", 3, 4, 2, 5, 2, True, True),
    ("gru", 2, 3, 3, 3, 1, False, True),
]


def flat(t):
    return [float(v) for v in t.detach().reshape(-1).tolist()]


def main():
    cases = []
    for n, (kind, b, t, i, h, layers, bias, init) in enumerate(CASES):
        torch.manual_seed(1000 + n)
        cls = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind]
        m = cls(i, h, num_layers=layers, bias=bias, batch_first=True).double()
        x = torch.randn(b, t, i, dtype=torch.float64, requires_grad=True)
        h0 = torch.randn(layers, b, h, dtype=torch.float64, requires_grad=True) if init else None
        c0 = torch.randn(layers, b, h, dtype=torch.float64, requires_grad=True) if init and kind == "lstm" else None
        if kind == "lstm":
            y, (hn, cn) = m(x, (h0, c0) if init else None)
        else:
            y, hn = m(x, h0)
            cn = None
        ry, rh = torch.randn_like(y), torch.randn_like(hn)
        loss = (y * ry).sum() + (hn * rh).sum()
        rc = None
        if cn is not None:
            rc = torch.randn_like(cn)
            loss = loss + (cn * rc).sum()
        wrt = [x] + ([h0] if h0 is not None else []) + ([c0] if c0 is not None else []) + [p for _, p in m.named_parameters()]
        grads = torch.autograd.grad(loss, wrt)
        k = 0
        case = {
            "kind": kind, "batch": b, "steps": t, "input": i, "hidden": h, "layers": layers, "bias": bias,
            "x": flat(x), "params": {name: flat(p) for name, p in m.named_parameters()},
            "y": flat(y), "hn": flat(hn), "ry": flat(ry), "rh": flat(rh),
        }
        case["grad_x"] = flat(grads[k]); k += 1
        if h0 is not None:
            case["h0"] = flat(h0); case["grad_h0"] = flat(grads[k]); k += 1
        if c0 is not None:
            case["c0"] = flat(c0); case["grad_c0"] = flat(grads[k]); k += 1
        if cn is not None:
            case["cn"] = flat(cn); case["rc"] = flat(rc)
        case["grad_params"] = {name: flat(g) for (name, _), g in zip(m.named_parameters(), grads[k:])}
        cases.append(case)
    with open(OUT, "w") as f:
        json.dump({"torch": torch.__version__, "cases": cases}, f, indent=None, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {len(cases)} cases to {os.path.relpath(OUT)}")


if __name__ == "__main__":
    main()
