#!/usr/bin/env python3
"""PyTorch reference values for Backprop's newer losses and learning-rate schedules.

Writes tests/Backprop.Tests/fixtures/losses_reference.json and schedules_reference.json. The C#
tests (LossScheduleReferenceTests) read those files, so `dotnet test` never needs Python; rerun
this script only to regenerate them:

    /usr/bin/python3 tools/loss_schedule_fixtures.py      (Debian: apt-get install -y python3-torch)

Losses: each case records its inputs, the loss (flattened) and the gradient of loss.sum() with
respect to each floating input, all in float64. Schedules: an SGD optimizer with lr 0.1 and the
learning rate after construction and after each of the following steps.
"""
import json
import math
import os

import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)
HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "..", "tests", "Backprop.Tests", "fixtures")
gen = torch.Generator().manual_seed(20261201)


def flat(t):
    return [float(v) for v in t.detach().reshape(-1).tolist()]


def case(name, fn, inputs, grad_of, **meta):
    """inputs: dict name -> tensor; grad_of: names of inputs to differentiate."""
    xs = {k: (v.clone().requires_grad_(k in grad_of)) for k, v in inputs.items()}
    out = fn(**xs)
    out.sum().backward()
    rec = {"name": name, "inputs": {k: {"shape": list(v.shape), "data": flat(v), "dtype": str(v.dtype).replace("torch.", "")}
                                    for k, v in inputs.items()},
           "shape": list(out.shape), "value": flat(out),
           "grads": {k: flat(xs[k].grad) for k in grad_of}}
    rec.update(meta)
    return rec


losses = []
x = torch.randn(3, 4, generator=gen) * 1.5
t = torch.randn(3, 4, generator=gen)
for red in ["mean", "sum", "none"]:
    losses.append(case(f"l1_{red}", lambda x, t, red=red: F.l1_loss(x, t, reduction=red), {"x": x, "t": t}, ["x", "t"], reduction=red))
for beta in [0.5, 1.0, 0.0]:
    for red in ["mean", "none"]:
        losses.append(case(f"smooth_l1_{beta}_{red}", lambda x, t, red=red, beta=beta: F.smooth_l1_loss(x, t, reduction=red, beta=beta),
                           {"x": x, "t": t}, ["x", "t"], reduction=red, beta=beta))
for delta in [0.5, 2.0]:
    for red in ["mean", "sum"]:
        losses.append(case(f"huber_{delta}_{red}", lambda x, t, red=red, delta=delta: F.huber_loss(x, t, reduction=red, delta=delta),
                           {"x": x, "t": t}, ["x", "t"], reduction=red, delta=delta))

logp = F.log_softmax(torch.randn(3, 5, generator=gen), dim=1)
q = F.softmax(torch.randn(3, 5, generator=gen), dim=1)
q[1, 2] = 0.0  # a zero probability: its term is 0 (xlogy)
logq = F.log_softmax(torch.randn(3, 5, generator=gen), dim=1)
for red in ["none", "sum", "mean", "batchmean"]:
    losses.append(case(f"kl_div_{red}", lambda x, t, red=red: F.kl_div(x, t, reduction=red), {"x": logp, "t": q}, ["x"],
                       reduction=red, log_target=False))
    losses.append(case(f"kl_div_log_{red}", lambda x, t, red=red: F.kl_div(x, t, reduction=red, log_target=True),
                       {"x": logp, "t": logq}, ["x", "t"], reduction=red, log_target=True))

z = torch.randn(4, 3, generator=gen) * 2
y = torch.rand(4, 3, generator=gen)
y[0] = torch.tensor([0.0, 1.0, 1.0])
pw = torch.tensor([0.5, 2.0, 3.0])
w = torch.tensor([1.0, 0.25, 2.0])
for red in ["mean", "sum", "none"]:
    losses.append(case(f"bce_logits_{red}", lambda x, t, red=red: F.binary_cross_entropy_with_logits(x, t, reduction=red),
                       {"x": z, "t": y}, ["x", "t"], reduction=red))
    losses.append(case(f"bce_logits_pw_{red}", lambda x, t, p, red=red: F.binary_cross_entropy_with_logits(x, t, reduction=red, pos_weight=p),
                       {"x": z, "t": y, "p": pw}, ["x", "t"], reduction=red))
    losses.append(case(f"bce_logits_pw_w_{red}", lambda x, t, p, w, red=red: F.binary_cross_entropy_with_logits(x, t, weight=w, reduction=red, pos_weight=p),
                       {"x": z, "t": y, "p": pw, "w": w}, ["x", "t"], reduction=red))

lp = F.log_softmax(torch.randn(5, 4, generator=gen), dim=1)
labels = torch.tensor([2.0, 0.0, 3.0, 1.0, 3.0])
for red in ["mean", "sum", "none"]:
    losses.append(case(f"nll_{red}", lambda x, t, red=red: F.nll_loss(x, t.long(), reduction=red), {"x": lp, "t": labels}, ["x"], reduction=red, ignore_index=-100))
    losses.append(case(f"nll_ignore_{red}", lambda x, t, red=red: F.nll_loss(x, t.long(), reduction=red, ignore_index=3),
                       {"x": lp, "t": labels}, ["x"], reduction=red, ignore_index=3))
    losses.append(case(f"nll_single_{red}", lambda x, t, red=red: F.nll_loss(x, t.long(), reduction=red), {"x": lp[1].clone(), "t": torch.tensor(2.0)}, ["x"],
                       reduction=red, ignore_index=-100))

with open(os.path.join(FIX, "losses_reference.json"), "w") as f:
    json.dump({"torch": torch.__version__, "cases": losses}, f, indent=1)


# ---------------------------------------------------------------- schedules
def run(make, steps=30, metrics=None):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=0.1)
    s = make(opt)
    lrs = [opt.param_groups[0]["lr"]]
    for i in range(steps):
        opt.step()
        if metrics is None:
            s.step()
        else:
            s.step(metrics[i])
        lrs.append(opt.param_groups[0]["lr"])
    return lrs


sched = []
sched.append({"name": "multistep", "milestones": [5, 12, 20], "gamma": 0.5,
              "lrs": run(lambda o: torch.optim.lr_scheduler.MultiStepLR(o, [5, 12, 20], gamma=0.5))})
sched.append({"name": "multistep_repeat", "milestones": [4, 9, 9], "gamma": 0.3,
              "lrs": run(lambda o: torch.optim.lr_scheduler.MultiStepLR(o, [4, 9, 9], gamma=0.3))})
# the C# test uses the same function: e => 0.95^e / (1 + e % 3)
sched.append({"name": "lambda", "lrs": run(lambda o: torch.optim.lr_scheduler.LambdaLR(o, lambda e: 0.95 ** e / (1 + e % 3)))})
for anneal in ["cos", "linear"]:
    for three in [False, True]:
        sched.append({"name": f"onecycle_{anneal}_{three}", "max_lr": 0.5, "total_steps": 30, "pct_start": 0.3, "anneal": anneal,
                      "three_phase": three, "div_factor": 10.0, "final_div_factor": 100.0,
                      "lrs": run(lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.5, total_steps=30, pct_start=0.3,
                                                                              anneal_strategy=anneal, cycle_momentum=False, div_factor=10.0,
                                                                              final_div_factor=100.0, three_phase=three), steps=29)})
sched.append({"name": "onecycle_default", "max_lr": 1.0, "total_steps": 25, "pct_start": 0.3, "anneal": "cos",
              "three_phase": False, "div_factor": 25.0, "final_div_factor": 1e4,
              "lrs": run(lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=1.0, total_steps=25, cycle_momentum=False), steps=24)})

# cycle_momentum=True: the momentum (SGD, RMSprop) or beta1 (Adam) of every step
def run_momentum(opt_name, three, steps):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = {"sgd": lambda: torch.optim.SGD([p], lr=0.1, momentum=0.9),
           "rmsprop": lambda: torch.optim.RMSprop([p], lr=0.1, momentum=0.5),
           "adam": lambda: torch.optim.Adam([p], lr=0.1)}[opt_name]()
    s = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.5, total_steps=steps + 1, pct_start=0.3, three_phase=three,
                                            base_momentum=0.8, max_momentum=0.9)
    key = lambda: opt.param_groups[0]["betas"][0] if opt_name == "adam" else opt.param_groups[0]["momentum"]
    lrs, mom = [opt.param_groups[0]["lr"]], [key()]
    for _ in range(steps):
        opt.step()
        s.step()
        lrs.append(opt.param_groups[0]["lr"])
        mom.append(key())
    return lrs, mom


for opt_name, three in [("sgd", False), ("rmsprop", True), ("adam", False)]:
    lrs, mom = run_momentum(opt_name, three, 24)
    sched.append({"name": f"onecycle_momentum_{opt_name}_{three}", "max_lr": 0.5, "total_steps": 25, "pct_start": 0.3, "anneal": "cos",
                  "three_phase": three, "div_factor": 25.0, "final_div_factor": 1e4, "optimizer": opt_name,
                  "base_momentum": 0.8, "max_momentum": 0.9, "lrs": lrs, "momenta": mom})

# metrics with a fall, plateaus, small (sub-threshold) improvements and a rise
metrics = [1.0, 0.8, 0.7, 0.7, 0.69999, 0.71, 0.72, 0.6, 0.6, 0.6, 0.6, 0.6, 0.59, 0.5999, 0.6, 0.5, 0.5, 0.5, 0.5, 0.5,
           0.45, 0.45, 0.46, 0.47, 0.48, 0.3, 0.3, 0.3, 0.3, 0.3]
plateau = [
    dict(mode="min", factor=0.5, patience=2, threshold=1e-4, threshold_mode="rel", cooldown=0, min_lr=0.0),
    dict(mode="min", factor=0.5, patience=1, threshold=0.05, threshold_mode="abs", cooldown=2, min_lr=0.02),
    dict(mode="min", factor=0.1, patience=3, threshold=0.02, threshold_mode="rel", cooldown=1, min_lr=0.0),
    dict(mode="max", factor=0.5, patience=2, threshold=1e-4, threshold_mode="rel", cooldown=0, min_lr=0.001),
    dict(mode="max", factor=0.7, patience=0, threshold=0.01, threshold_mode="abs", cooldown=1, min_lr=0.0),
]
for i, kw in enumerate(plateau):
    sched.append(dict(name=f"plateau_{i}", metrics=metrics, **kw,
                      lrs=run(lambda o, kw=kw: torch.optim.lr_scheduler.ReduceLROnPlateau(o, **kw), metrics=metrics)))

with open(os.path.join(FIX, "schedules_reference.json"), "w") as f:
    json.dump({"torch": torch.__version__, "cases": sched}, f, indent=1)
print(len(losses), "loss cases,", len(sched), "schedules")
