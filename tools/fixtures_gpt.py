#!/usr/bin/env python3
"""PyTorch reference values for LayerNorm, attention and a small GPT (float64).

Writes tests/Backprop.Tests/fixtures/gpt.json, which GptFixtureTests.cs replays. PyTorch 1.13 has no
scaled_dot_product_attention, so attention is written out: softmax(q·kᵀ·scale + mask)·v, the causal mask
hiding key j from query i when j > i + Tk − Tq. The GPT is nanoGPT's model written out with Backprop's
parameter names (wte, wpe, h.N.ln_1, h.N.attn.c_attn, h.N.attn.c_proj, h.N.ln_2, h.N.mlp.c_fc,
h.N.mlp.c_proj, ln_f; the head tied to wte), exact GELU, no dropout.

    /usr/bin/python3 tools/fixtures_gpt.py

Each case stores its inputs (shape and flat row-major values), the outputs, the upstream gradient fed to
backward (for the GPT, the mean cross-entropy is the output) and the gradient of every input.
"""
import json
import math
import os

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "Backprop.Tests", "fixtures", "gpt.json")
torch.manual_seed(1234)
D = torch.float64


def enc(t):
    return {"shape": list(t.shape), "data": [float(v) if t.dtype != torch.int64 else int(v) for v in t.detach().reshape(-1).tolist()]}


def attention(q, k, v, causal, scale):
    s = q @ k.transpose(-2, -1) * scale
    if causal:
        tq, tk = q.shape[-2], k.shape[-2]
        i = torch.arange(tq).unsqueeze(1)
        j = torch.arange(tk).unsqueeze(0)
        s = s.masked_fill(j > i + tk - tq, float("-inf"))
    return torch.softmax(s, -1) @ v


def grad_case(f, inputs, extra=None):
    xs = [x.clone().requires_grad_(True) for x in inputs]
    y = f(*xs)
    up = torch.randn(y.shape, dtype=D)
    grads = torch.autograd.grad(y, xs, up)
    case = {"inputs": [enc(x) for x in inputs], "output": enc(y), "upstream": enc(up), "grads": [enc(g) for g in grads]}
    case.update(extra or {})
    return case


cases = {}
cases["layer_norm"] = grad_case(lambda x, w, b: F.layer_norm(x, (7,), w, b, 1e-5),
                                [torch.randn(3, 7, dtype=D) * 2 + 1, torch.randn(7, dtype=D), torch.randn(7, dtype=D)])
cases["layer_norm_3d"] = grad_case(lambda x, w, b: F.layer_norm(x, (5,), w, b, 1e-5),
                                   [torch.randn(2, 3, 5, dtype=D), torch.randn(5, dtype=D), torch.randn(5, dtype=D)])
for causal in (False, True):
    name = "attention_causal" if causal else "attention"
    cases[name] = grad_case(lambda q, k, v: attention(q, k, v, causal, 1 / math.sqrt(3)),
                            [torch.randn(2, 2, 5, 3, dtype=D), torch.randn(2, 2, 5, 3, dtype=D), torch.randn(2, 2, 5, 4, dtype=D)],
                            {"causal": causal})
cases["attention_causal_cache"] = grad_case(lambda q, k, v: attention(q, k, v, True, 1 / math.sqrt(3)),
                                            [torch.randn(1, 2, 3, 3, dtype=D), torch.randn(1, 2, 7, 3, dtype=D), torch.randn(1, 2, 7, 3, dtype=D)],
                                            {"causal": True})
# 70 positions: a second, partial block of keys in Backprop's kernel
cases["attention_causal_70"] = grad_case(lambda q, k, v: attention(q, k, v, True, 1 / math.sqrt(4)),
                                         [torch.randn(1, 1, 70, 4, dtype=D), torch.randn(1, 1, 70, 4, dtype=D), torch.randn(1, 1, 70, 4, dtype=D)],
                                         {"causal": True})

# ---------------------------------------------------------------- a small GPT
V, BLOCK, L, C, H = 7, 8, 2, 8, 2
params = {"wte.weight": torch.randn(V, C, dtype=D) * 0.5, "wpe.weight": torch.randn(BLOCK, C, dtype=D) * 0.5}
for l in range(L):
    p = f"h.{l}."
    params[p + "ln_1.weight"] = 1 + 0.1 * torch.randn(C, dtype=D)
    params[p + "ln_1.bias"] = 0.1 * torch.randn(C, dtype=D)
    params[p + "attn.c_attn.weight"] = 0.3 * torch.randn(3 * C, C, dtype=D)
    params[p + "attn.c_attn.bias"] = 0.1 * torch.randn(3 * C, dtype=D)
    params[p + "attn.c_proj.weight"] = 0.3 * torch.randn(C, C, dtype=D)
    params[p + "attn.c_proj.bias"] = 0.1 * torch.randn(C, dtype=D)
    params[p + "ln_2.weight"] = 1 + 0.1 * torch.randn(C, dtype=D)
    params[p + "ln_2.bias"] = 0.1 * torch.randn(C, dtype=D)
    params[p + "mlp.c_fc.weight"] = 0.3 * torch.randn(4 * C, C, dtype=D)
    params[p + "mlp.c_fc.bias"] = 0.1 * torch.randn(4 * C, dtype=D)
    params[p + "mlp.c_proj.weight"] = 0.3 * torch.randn(C, 4 * C, dtype=D)
    params[p + "mlp.c_proj.bias"] = 0.1 * torch.randn(C, dtype=D)
params["ln_f.weight"] = 1 + 0.1 * torch.randn(C, dtype=D)
params["ln_f.bias"] = 0.1 * torch.randn(C, dtype=D)
for t in params.values():
    t.requires_grad_(True)


def gpt(ids):
    b, t = ids.shape
    x = params["wte.weight"][ids] + params["wpe.weight"][:t]
    for l in range(L):
        p = lambda n: params[f"h.{l}.{n}"]
        h = F.layer_norm(x, (C,), p("ln_1.weight"), p("ln_1.bias"), 1e-5)
        qkv = F.linear(h, p("attn.c_attn.weight"), p("attn.c_attn.bias"))
        q, k, v = qkv.split(C, dim=2)
        q, k, v = [z.view(b, t, H, C // H).transpose(1, 2) for z in (q, k, v)]
        y = attention(q, k, v, True, 1 / math.sqrt(C // H)).transpose(1, 2).reshape(b, t, C)
        x = x + F.linear(y, p("attn.c_proj.weight"), p("attn.c_proj.bias"))
        h = F.layer_norm(x, (C,), p("ln_2.weight"), p("ln_2.bias"), 1e-5)
        x = x + F.linear(F.gelu(F.linear(h, p("mlp.c_fc.weight"), p("mlp.c_fc.bias"))), p("mlp.c_proj.weight"), p("mlp.c_proj.bias"))
    x = F.layer_norm(x, (C,), params["ln_f.weight"], params["ln_f.bias"], 1e-5)
    return F.linear(x, params["wte.weight"])


ids = torch.randint(0, V, (2, 6))
targets = torch.randint(0, V, (2, 6))
logits = gpt(ids)
loss = F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1))
names = list(params)
grads = torch.autograd.grad(loss, [params[n] for n in names])
cases["gpt"] = {
    "config": {"vocab": V, "block": BLOCK, "layers": L, "width": C, "heads": H},
    "params": {n: enc(params[n]) for n in names},
    "ids": enc(ids), "targets": enc(targets),
    "logits": enc(logits), "loss": float(loss),
    "grads": {n: enc(g) for n, g in zip(names, grads)},
}

with open(OUT, "w") as f:
    json.dump(cases, f)
print("wrote", OUT)
