#!/usr/bin/env python3
"""Reference trajectories from PyTorch for Backprop's optimizer, schedule and clipping tests.

Writes tests/Backprop.Tests/fixtures/optim_reference.json. The C# tests read that file, so
`dotnet test` never needs Python; rerun this script only to regenerate the fixture:

    /usr/bin/python3 tools/optim_reference.py      (Debian: apt-get install -y python3-torch)

Every optimizer minimizes the same smooth function of two float64 parameters, w [3, 4] and b [4],
for 10 steps from the same start, and the parameters after each step are recorded:

    loss(w, b) = sum((tanh(x @ w + b) - t)^2) + 0.1 * sum(w^4) + sum(exp(0.5 * b) * b)
"""
import json
import math
import os

import torch

torch.set_default_dtype(torch.float64)
STEPS = 10
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "Backprop.Tests", "fixtures", "optim_reference.json")

gen = torch.Generator().manual_seed(20240601)
X = torch.randn(5, 3, generator=gen)
T = torch.rand(5, 4, generator=gen) * 2 - 1
W0 = torch.randn(3, 4, generator=gen) * 0.8
B0 = torch.randn(4, generator=gen) * 0.5


def loss_fn(w, b):
    y = torch.tanh(x_at(w) + b)
    return ((y - T) ** 2).sum() + 0.1 * (w ** 4).sum() + (torch.exp(0.5 * b) * b).sum()


def x_at(w):
    return X @ w


def flat(t):
    return t.detach().reshape(-1).tolist()


# name -> (torch class, kwargs in torch's names, optional groups: list of (param indices, overrides))
OPTIMIZERS = [
    ("sgd_plain", "SGD", dict(lr=0.1), None),
    ("sgd_momentum", "SGD", dict(lr=0.05, momentum=0.9, dampening=0.1), None),
    ("sgd_nesterov", "SGD", dict(lr=0.05, momentum=0.9, nesterov=True), None),
    ("sgd_weight_decay", "SGD", dict(lr=0.1, momentum=0.5, weight_decay=0.05), None),
    ("sgd_maximize", "SGD", dict(lr=0.02, momentum=0.3, weight_decay=0.1, maximize=True), None),
    ("sgd_groups", "SGD", dict(lr=0.1, momentum=0.9), [([0], {}), ([1], dict(lr=0.01, weight_decay=0.1))]),
    ("adam", "Adam", dict(lr=0.01), None),
    ("adam_amsgrad", "Adam", dict(lr=0.05, betas=(0.8, 0.9), amsgrad=True), None),
    ("adam_weight_decay", "Adam", dict(lr=0.01, weight_decay=0.1), None),
    ("adam_groups", "Adam", dict(lr=0.01), [([1], dict(lr=0.05)), ([0], dict(weight_decay=0.2))]),
    ("adamw", "AdamW", dict(lr=0.01, weight_decay=0.1), None),
    ("adamw_amsgrad", "AdamW", dict(lr=0.05, betas=(0.8, 0.9), eps=1e-6, amsgrad=True), None),
    ("adagrad", "Adagrad", dict(lr=0.1), None),
    ("adagrad_lr_decay", "Adagrad", dict(lr=0.1, lr_decay=0.05, weight_decay=0.01, initial_accumulator_value=0.1), None),
    ("rmsprop", "RMSprop", dict(lr=0.01), None),
    ("rmsprop_centered", "RMSprop", dict(lr=0.01, centered=True), None),
    ("rmsprop_momentum", "RMSprop", dict(lr=0.01, momentum=0.9, weight_decay=0.01), None),
    ("rmsprop_centered_momentum", "RMSprop", dict(lr=0.005, alpha=0.9, centered=True, momentum=0.5, eps=1e-6), None),
]


def run_optimizer(cls_name, kwargs, groups):
    w = W0.clone().requires_grad_()
    b = B0.clone().requires_grad_()
    params = [w, b]
    cls = getattr(torch.optim, cls_name)
    if groups is None:
        opt = cls(params, **kwargs)
    else:
        opt = cls([dict(params=[params[i] for i in idx], **over) for idx, over in groups], **kwargs)
    trajectory = []
    for _ in range(STEPS):
        opt.zero_grad()
        loss_fn(w, b).backward()
        opt.step()
        trajectory.append(dict(w=flat(w), b=flat(b)))
    return trajectory


def jsonable_kwargs(kwargs):
    out = dict(kwargs)
    if "betas" in out:
        out["betas"] = list(out["betas"])
    return out


SCHED_STEPS = 25
L = torch.optim.lr_scheduler
SCHEDULERS = [
    ("step", lambda o: L.StepLR(o, step_size=3, gamma=0.5), dict(type="StepLr", step_size=3, gamma=0.5)),
    ("exponential", lambda o: L.ExponentialLR(o, gamma=0.9), dict(type="ExponentialLr", gamma=0.9)),
    ("cosine", lambda o: L.CosineAnnealingLR(o, T_max=10, eta_min=0.001), dict(type="CosineAnnealingLr", t_max=10, eta_min=0.001)),
    ("linear", lambda o: L.LinearLR(o, start_factor=0.25, total_iters=5), dict(type="LinearWarmup", total_iters=5, start_factor=0.25, end_factor=1.0)),
    ("linear_default", lambda o: L.LinearLR(o), dict(type="LinearWarmup", total_iters=5)),
    ("warmup_cosine",
     lambda o: L.SequentialLR(o, [L.LinearLR(o, start_factor=0.1, total_iters=4), L.CosineAnnealingLR(o, T_max=16, eta_min=1e-4)], milestones=[4]),
     dict(type="SequentialLr", milestones=[4], schedulers=[
         dict(type="LinearWarmup", total_iters=4, start_factor=0.1, end_factor=1.0),
         dict(type="CosineAnnealingLr", t_max=16, eta_min=1e-4)])),
    ("three_phase",
     lambda o: L.SequentialLR(o, [L.LinearLR(o, start_factor=0.5, end_factor=0.8, total_iters=3), L.StepLR(o, step_size=2, gamma=0.7), L.ExponentialLR(o, gamma=0.95)], milestones=[3, 9]),
     dict(type="SequentialLr", milestones=[3, 9], schedulers=[
         dict(type="LinearWarmup", total_iters=3, start_factor=0.5, end_factor=0.8),
         dict(type="StepLr", step_size=2, gamma=0.7),
         dict(type="ExponentialLr", gamma=0.95)])),
]
GROUP_LRS = [0.1, 0.02]


def run_scheduler(make):
    ws = [torch.zeros(1, requires_grad=True), torch.zeros(1, requires_grad=True)]
    opt = torch.optim.SGD([dict(params=[ws[0]], lr=GROUP_LRS[0]), dict(params=[ws[1]], lr=GROUP_LRS[1])], lr=1.0)
    sched = make(opt)
    lrs = [[g["lr"] for g in opt.param_groups]]
    for _ in range(SCHED_STEPS):
        opt.step()
        sched.step()
        lrs.append([g["lr"] for g in opt.param_groups])
    return lrs


CLIPS = [
    dict(max_norm=0.5, norm_type=2.0),
    dict(max_norm=100.0, norm_type=2.0),
    dict(max_norm=0.2, norm_type=math.inf),
    dict(max_norm=0.3, norm_type=1.0),
    dict(max_norm=0.25, norm_type=3.0),
]


def run_clip(max_norm, norm_type):
    w = W0.clone().requires_grad_()
    b = B0.clone().requires_grad_()
    loss_fn(w, b).backward()
    total = torch.nn.utils.clip_grad_norm_([w, b], max_norm=max_norm, norm_type=norm_type)
    return dict(total_norm=float(total), w_grad=flat(w.grad), b_grad=flat(b.grad))


def jnum(v):
    return "inf" if v == math.inf else v


def main():
    data = dict(
        torch_version=torch.__version__,
        steps=STEPS,
        loss="sum((tanh(x @ w + b) - t)^2) + 0.1 * sum(w^4) + sum(exp(0.5 * b) * b)",
        x=flat(X), x_shape=list(X.shape),
        t=flat(T), t_shape=list(T.shape),
        w0=flat(W0), w_shape=list(W0.shape),
        b0=flat(B0), b_shape=list(B0.shape),
        optimizers=[
            dict(name=name, type=cls, kwargs=jsonable_kwargs(kw),
                 groups=None if groups is None else [dict(params=idx, **over) for idx, over in groups],
                 trajectory=run_optimizer(cls, kw, groups))
            for name, cls, kw, groups in OPTIMIZERS
        ],
        schedulers=dict(
            group_lrs=GROUP_LRS,
            steps=SCHED_STEPS,
            cases=[dict(name=name, spec=spec, lrs=run_scheduler(make)) for name, make, spec in SCHEDULERS],
        ),
        clip=[dict(max_norm=c["max_norm"], norm_type=jnum(c["norm_type"]), **run_clip(**c)) for c in CLIPS],
    )
    with open(OUT, "w") as f:
        json.dump(data, f, indent=1)
        f.write("\n")
    print(f"wrote {os.path.relpath(OUT)}")


if __name__ == "__main__":
    main()
