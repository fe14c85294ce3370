#!/usr/bin/env python3
"""Differential-test fixtures from PyTorch for Backprop's ops, layers, losses and training loops.

Writes tests/Backprop.Tests/fixtures/torch/*.json, which TorchDifferentialTests.cs replays with
Backprop's public API. The fixtures are committed, so `dotnet test` never needs Python; rerun this
script only to regenerate them (the output is deterministic):

    apt-get install -y python3-torch && /usr/bin/python3 tools/make_fixtures.py

What it produces
----------------
ops_*.json: one file per op family. Each case names an op (the C# test maps the name to a
Backprop call), its scalar arguments, its inputs (dtype, shape, flat row-major values; floating-point
inputs that require grad also carry PyTorch's gradient), and its outputs (values, and for each
differentiable output the upstream gradient dL/dout that was fed to backward). Inputs are seeded
random values (the generator is seeded from the case id, so adding a case changes no other), mostly
float64 with a float32 twin for most ops; shapes cover broadcasting, size 1, size 0 and 0-d tensors
where PyTorch allows them, plus edge values (ties, zeros, bounds, -inf, large magnitudes);
ops_strided.json passes some inputs as transposed (non-contiguous) views. Backward is run as
torch.autograd.grad(outputs, inputs, upstreams), i.e. the vector-Jacobian product with a random
vector, so every element of every gradient is checked.

Not generated here, because Backprop deliberately differs: mixed
float32/float64 operands (an error in Backprop), splitting a size-0 dimension by size, PyTorch's infinite target gradient of
binary_cross_entropy at p = 0 or 1. Comparisons and bool masks have their own fixtures
(tools/fixtures_bool.py).

training.json: a small MLP (8-16-16-4, tanh or relu) with initial weights drawn by PyTorch in float32
(so the float32 and float64 runs start from identical values), fixed data split into 4 fixed
mini-batches of 8, cross-entropy loss, 20 steps of SGD with momentum and of Adam, in float32 and
float64; the loss at every step and the final weights are stored.

Encoding: float64 values as Python's shortest repr (exact), float32 values with 9 significant digits
(exact for float32), non-finite values as the strings "NaN", "Infinity", "-Infinity".
"""
import json
import math
import os
import zlib

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_DIR = os.path.join(HERE, "..", "tests", "Backprop.Tests", "fixtures", "torch")

F64, F32, I64 = torch.float64, torch.float32, torch.int64
BOTH = (F64, F32)
ONLY64 = (F64,)
DT_NAME = {F64: "float64", F32: "float32", I64: "int64"}
DT_SHORT = {F64: "f64", F32: "f32"}


# ---------------------------------------------------------------------------- encoding

def enc_value(v, dtype):
    if dtype == I64:
        return int(v)
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    if dtype == F32:
        s = "%.9g" % v
        return float(s) if ("." in s or "e" in s or "n" in s) else int(s)
    return v


def enc(t):
    t = t.detach()
    return [enc_value(v, t.dtype) for v in t.reshape(-1).tolist()]


def tensor_json(t):
    return dict(dtype=DT_NAME[t.dtype], shape=list(t.shape), data=enc(t))


# ---------------------------------------------------------------------------- random inputs

def randn(g, *s):
    return torch.randn(s, generator=g, dtype=F64)


def pos(g, *s):
    """Uniform in [0.5, 2): for Log, Sqrt, Pow with a fractional exponent."""
    return 0.5 + 1.5 * torch.rand(s, generator=g, dtype=F64)


def away(g, *s):
    """|x| in [0.5, 2) with a random sign: for divisors."""
    sign = torch.where(torch.rand(s, generator=g, dtype=F64) < 0.5, -1.0, 1.0)
    return sign * pos(g, *s)


def unit(g, *s):
    """Uniform in [0.05, 0.95): probabilities."""
    return 0.05 + 0.9 * torch.rand(s, generator=g, dtype=F64)


def ints(g, lo, hi, *s):
    return torch.randint(lo, hi, s, generator=g, dtype=I64)


def mask(g, *s):
    return (torch.rand(s, generator=g, dtype=F64) < 0.5).to(F64)


def nograd_t(t):
    return t.detach()


def nograd(t):
    """Marks a floating-point input as not requiring grad."""
    return (t, False)


# ---------------------------------------------------------------------------- cases

FAMILIES = {}


def case(family, op, label, make, fn, args=None, dtypes=BOTH, transpose=()):
    """One case per dtype. make(g) -> list of (name, tensor) or (name, (tensor, requires_grad));
    fn(inputs: dict, args: dict) -> tensor or tuple of tensors. The inputs named in `transpose` reach
    the op as transposed views (last two dimensions swapped, so not contiguous); their gradients are
    with respect to the stored tensor."""
    args = args or {}
    for dt in dtypes:
        cid = f"{op}/{label}/{DT_SHORT[dt]}"
        g = torch.Generator().manual_seed(zlib.crc32(f"{op}/{label}".encode()))
        named = {}
        inputs_json = []
        leaves = []
        for name, spec in make(g):
            t, rg = spec if isinstance(spec, tuple) else (spec, None)
            if t.dtype.is_floating_point:
                t = t.to(dt)
                rg = True if rg is None else rg
            else:
                rg = False
            t = t.detach().clone().requires_grad_(rg)
            named[name] = t
            inputs_json.append(dict(name=name, requires_grad=rg, **tensor_json(t)))
            if rg:
                leaves.append((len(inputs_json) - 1, t))
        outs = fn({k: v.transpose(-1, -2) if k in transpose else v for k, v in named.items()}, args)
        if not isinstance(outs, tuple):
            outs = (outs,)
        outputs_json = []
        diff_outs, ups = [], []
        for o in outs:
            oj = tensor_json(o)
            if o.dtype.is_floating_point and o.requires_grad:
                up = torch.randn(o.shape, generator=g, dtype=F64).to(o.dtype)
                oj["upstream"] = enc(up)
                diff_outs.append(o)
                ups.append(up)
            outputs_json.append(oj)
        if diff_outs and leaves:
            grads = torch.autograd.grad(diff_outs, [t for _, t in leaves], ups, allow_unused=True)
            for (i, t), gr in zip(leaves, grads):
                inputs_json[i]["grad"] = enc(gr if gr is not None else torch.zeros_like(t))
        c = dict(id=cid, op=op, dtype=DT_NAME[dt], args=args, inputs=inputs_json, outputs=outputs_json)
        if transpose:
            c["transpose"] = list(transpose)
        FAMILIES.setdefault(family, []).append(c)


def ab(sa, sb, gen_a=randn, gen_b=randn):
    return lambda g: [("a", gen_a(g, *sa)), ("b", gen_b(g, *sb))]


def x_of(s, gen=randn):
    return lambda g: [("x", gen(g, *s))]


def name_shape(*shapes):
    return "_".join("x".join(map(str, s)) if len(s) else "scalar" for s in shapes)


# ---------------------------------------------------------------------------- elementwise

BINARY_SHAPES = [
    ((3, 4), (3, 4)),        # same shape
    ((3, 1), (4,)),          # both broadcast
    ((2, 3, 4), (3, 1)),     # fewer leading dims
    ((1, 4), (3, 1)),
    ((5,), ()),              # scalar operand
    ((), ()),
    ((1,), (1, 1)),
    ((0, 3), (3,)),          # empty
    ((2, 0), (1, 1)),
]
BINARY_F32 = {((3, 1), (4,)), ((2, 3, 4), (3, 1))}


def binary(op, torch_fn, gen_a=randn, gen_b=randn, shapes=BINARY_SHAPES):
    for sa, sb in shapes:
        case("elementwise", op, name_shape(sa, sb), ab(sa, sb, gen_a, gen_b),
             lambda t, a, f=torch_fn: f(t["a"], t["b"]), dtypes=BOTH if (sa, sb) in BINARY_F32 else ONLY64)


binary("add", torch.add)
binary("sub", torch.sub)
binary("mul", torch.mul)
binary("div", torch.div, gen_b=away)
binary("pow_tensor", torch.pow, gen_a=pos)
binary("maximum", torch.maximum)
binary("minimum", torch.minimum)

# ties: PyTorch splits the gradient equally between a and b where they are equal
for op, f in (("maximum", torch.maximum), ("minimum", torch.minimum)):
    case("elementwise", op, "ties", lambda g: [("a", torch.tensor([[1.0, 2.0, -3.0], [0.5, 0.0, 4.0]])),
                                               ("b", torch.tensor([1.0, 0.0, -3.0]))],
         lambda t, a, f=f: f(t["a"], t["b"]))
# one operand without grad
case("elementwise", "mul", "b_no_grad", lambda g: [("a", randn(g, 3, 4)), ("b", nograd(randn(g, 4)))],
     lambda t, a: t["a"] * t["b"])
case("elementwise", "div", "a_no_grad", lambda g: [("a", nograd(randn(g, 2, 3))), ("b", away(g, 2, 1))],
     lambda t, a: t["a"] / t["b"])
# scalar operands through the C# operators
case("elementwise", "scalar_arith", "3x4", x_of((3, 4)), lambda t, a: t["x"] * 3 + 2 - t["x"] / 4 - 1.5)
case("elementwise", "scalar_rdiv", "3x4", x_of((3, 4), away), lambda t, a: 1.5 / t["x"])
case("elementwise", "scalar_rsub", "2x3", x_of((2, 3)), lambda t, a: 2.5 - t["x"])

UNARY_SHAPES = [(3, 4), (2, 3, 4), (1,), (), (0,), (2, 0)]


def unary(op, torch_fn, gen=randn, args=None, label_prefix="", shapes=UNARY_SHAPES):
    for s in shapes:
        case("elementwise", op, label_prefix + name_shape(s), x_of(s, gen),
             lambda t, a, f=torch_fn: f(t["x"], a), args=args, dtypes=BOTH if s == (3, 4) else ONLY64)


unary("neg", lambda x, a: -x)
unary("exp", lambda x, a: torch.exp(x))
unary("log", lambda x, a: torch.log(x), gen=pos)
unary("sqrt", lambda x, a: torch.sqrt(x), gen=pos)
unary("abs", lambda x, a: torch.abs(x))
unary("square", lambda x, a: torch.square(x), shapes=[(3, 4), ()])
for p in (2.0, 3.0, 0.5, -1.5, 1.0, 0.0, -2.0):
    unary("pow_scalar", lambda x, a: x ** a["p"], gen=pos, args=dict(p=p), label_prefix=f"p{p}_", shapes=[(3, 4)])
for p in (2.0, 3.0, -1.0):   # integer exponents of negative bases
    unary("pow_scalar", lambda x, a: x ** a["p"], gen=away, args=dict(p=p), label_prefix=f"neg_base_p{p}_", shapes=[(2, 3)])
unary("pow_scalar", lambda x, a: x ** a["p"], args=dict(p=2.0), label_prefix="p2.0_", shapes=[(0,)])
# zeros: x^0 has gradient 0 everywhere, x^1 gradient 1, and 0^p for p > 1 gradient 0
for p in (0.0, 1.0, 2.0, 3.0):
    case("elementwise", "pow_scalar", f"p{p}_zeros", lambda g: [("x", torch.tensor([0.0, -1.5, 2.0, 0.0]))],
         lambda t, a: t["x"] ** a["p"], dict(p=p))
case("elementwise", "pow_tensor", "zero_base", lambda g: [("a", torch.tensor([0.0, 0.0, 0.0, 2.0, 0.0])),
                                                        ("b", torch.tensor([2.0, 1.0, 0.0, 0.0, 3.5]))],
     lambda t, a: torch.pow(t["a"], t["b"]))
case("elementwise", "sqrt", "zero", lambda g: [("x", torch.tensor([0.0, 1.0, 4.0]))], lambda t, a: torch.sqrt(t["x"]))
case("elementwise", "log", "zero", lambda g: [("x", torch.tensor([0.0, 1.0, 4.0]))], lambda t, a: torch.log(t["x"]))
case("elementwise", "abs", "zeros", lambda g: [("x", torch.tensor([-1.5, 0.0, 2.0, -0.0]))], lambda t, a: torch.abs(t["x"]))

for lo, hi in ((-0.5, 0.5), (0.1, None), (None, -0.2), (1.0, 1.0)):
    args = {k: v for k, v in (("min", lo), ("max", hi)) if v is not None}
    unary("clamp", lambda x, a: torch.clamp(x, min=a.get("min"), max=a.get("max")), args=args,
          label_prefix=f"min{lo}_max{hi}_", shapes=[(3, 4), (0, 2)])
# values exactly at the bounds: PyTorch passes the gradient there (min <= x <= max)
case("elementwise", "clamp", "at_bounds", lambda g: [("x", torch.tensor([-0.5, 0.5, 0.0, -0.7, 0.9]))],
     lambda t, a: torch.clamp(t["x"], min=a["min"], max=a["max"]), args=dict(min=-0.5, max=0.5))

WHERE_SHAPES = [((3, 4), (3, 4), (3, 4)), ((3, 1), (3, 4), (4,)), ((4,), (2, 1), ()), ((2, 3), (1,), (2, 3)), ((0, 2), (2,), (1, 2))]
for sc, sa, sb in WHERE_SHAPES:
    case("elementwise", "where", name_shape(sc, sa, sb),
         lambda g, sc=sc, sa=sa, sb=sb: [("cond", nograd(mask(g, *sc))), ("a", randn(g, *sa)), ("b", randn(g, *sb))],
         lambda t, a: torch.where(t["cond"] != 0, t["a"], t["b"]), dtypes=BOTH if sc == (3, 1) else ONLY64)

# ---------------------------------------------------------------------------- activations


def act(op, torch_fn, args=None, label_prefix="", shapes=UNARY_SHAPES, gen=lambda g, *s: 2 * randn(g, *s)):
    for s in shapes:
        case("activations", op, label_prefix + name_shape(s), x_of(s, gen),
             lambda t, a, f=torch_fn: f(t["x"], a), args=args, dtypes=BOTH if s in ((3, 4), (64,)) else ONLY64)


act("tanh", lambda x, a: torch.tanh(x))
act("sigmoid", lambda x, a: torch.sigmoid(x))
act("relu", lambda x, a: torch.relu(x))
act("leaky_relu", lambda x, a: F.leaky_relu(x, a["negative_slope"]), args=dict(negative_slope=0.01), shapes=[(3, 4), (0,)])
act("leaky_relu", lambda x, a: F.leaky_relu(x, a["negative_slope"]), args=dict(negative_slope=0.2),
    label_prefix="slope0.2_", shapes=[(2, 3, 4)])
for approx in ("none", "tanh"):
    act("gelu", lambda x, a: F.gelu(x, approximate=a["approximate"]), args=dict(approximate=approx),
        label_prefix=approx + "_", shapes=[(3, 4), (64,), (2, 0)], gen=lambda g, *s: 3 * randn(g, *s))
act("softplus", lambda x, a: F.softplus(x), shapes=[(3, 4), (0,)])
act("softplus", lambda x, a: F.softplus(x, beta=a["beta"], threshold=a["threshold"]), args=dict(beta=2.0, threshold=1.0),
    label_prefix="beta2_th1_", shapes=[(3, 4)])
# large |x|: tanh/sigmoid saturate, softplus switches to the identity above the threshold
case("activations", "softplus", "large",
     lambda g: [("x", torch.tensor([-60.0, -25.0, -5.0, 0.0, 5.0, 19.9, 20.0, 20.1, 25.0, 60.0]))],
     lambda t, a: F.softplus(t["x"]))
for op, f in (("tanh", torch.tanh), ("sigmoid", torch.sigmoid)):
    case("activations", op, "large", lambda g: [("x", torch.tensor([-40.0, -12.0, -3.0, 0.0, 3.0, 12.0, 40.0]))],
         lambda t, a, f=f: f(t["x"]))
# at exactly 0: relu' = 0, leaky' = slope (PyTorch's x > 0 convention)
case("activations", "relu", "zero", lambda g: [("x", torch.tensor([-1.0, 0.0, 1.0]))], lambda t, a: torch.relu(t["x"]))
case("activations", "leaky_relu", "zero", lambda g: [("x", torch.tensor([-1.0, 0.0, 1.0]))],
     lambda t, a: F.leaky_relu(t["x"], a["negative_slope"]), args=dict(negative_slope=0.1))

# ---------------------------------------------------------------------------- matmul

MATMUL = [
    ((5,), (5,)),                # dot
    ((1,), (1,)),
    ((0,), (0,)),
    ((3, 4), (4, 5)),            # matrix
    ((1, 1), (1, 1)),
    ((4,), (4, 3)),              # vector-matrix
    ((3, 4), (4,)),              # matrix-vector
    ((2, 3, 4), (2, 4, 5)),      # batched
    ((2, 3, 4), (4, 5)),         # batched by matrix (broadcast right)
    ((4, 5), (2, 5, 3)),         # matrix by batched (broadcast left)
    ((2, 1, 3, 4), (3, 4, 2)),   # batch dims broadcast against each other
    ((2, 3, 4), (4,)),           # batched matrix-vector
    ((4,), (2, 4, 3)),           # vector by batched
    ((2, 0), (0, 3)),            # empty inner dimension: zeros
    ((0, 3), (3, 2)),            # empty rows
    ((3, 2), (2, 0)),
    ((17, 33), (33, 9)),         # larger than one SIMD register
]
for sa, sb in MATMUL:
    case("matmul", "matmul", name_shape(sa, sb), ab(sa, sb), lambda t, a: torch.matmul(t["a"], t["b"]),
         dtypes=BOTH if sa in ((3, 4), (2, 3, 4), (5,), (17, 33)) else ONLY64)
# transposed (non-contiguous) operands: the stored inputs are a^T [k, m] and b^T [n, k]
case("matmul", "matmul_tt", "4x3_5x4", ab((4, 3), (5, 4)), lambda t, a: t["a"].t() @ t["b"].t())

# ---------------------------------------------------------------------------- reductions

RED_SHAPE = (3, 4, 5)
for dims, keep in ((None, False), ([0], False), ([1], True), ([-1], False), ([0, 2], False), ([0, -1], True), ([], False)):
    label = ("all" if dims is None else "dims" + "_".join(map(str, dims)) if dims else "empty_dims") + ("_keep" if keep else "")
    args = dict(dims=dims, keepdim=keep)
    f32 = BOTH if dims in (None, [1]) else ONLY64
    # torch: dim=[] means all dims, like Backprop
    case("reductions", "sum", label, x_of(RED_SHAPE),
         lambda t, a: t["x"].sum() if a["dims"] is None else t["x"].sum(dim=a["dims"], keepdim=a["keepdim"]), args, f32)
    case("reductions", "mean", label, x_of(RED_SHAPE),
         lambda t, a: t["x"].mean() if a["dims"] is None else t["x"].mean(dim=a["dims"], keepdim=a["keepdim"]), args, f32)
for s, dims, keep in (((), None, False), ((1,), [0], True), ((0, 3), [0], False), ((0, 3), None, False), ((2, 0), [1], True)):
    args = dict(dims=dims, keepdim=keep)
    label = name_shape(s) + ("_all" if dims is None else "_dims" + "_".join(map(str, dims))) + ("_keep" if keep else "")
    case("reductions", "sum", label, x_of(s),
         lambda t, a: t["x"].sum() if a["dims"] is None else t["x"].sum(dim=a["dims"], keepdim=a["keepdim"]), args, ONLY64)
    case("reductions", "mean", label, x_of(s),
             lambda t, a: t["x"].mean() if a["dims"] is None else t["x"].mean(dim=a["dims"], keepdim=a["keepdim"]), args, ONLY64)
# the mean of no elements is NaN in both
case("reductions", "mean", "empty_all", x_of((0,)), lambda t, a: t["x"].mean(), dict(dims=None, keepdim=False))
case("reductions", "sum", "large_1000", x_of((1000,)), lambda t, a: t["x"].sum(), dict(dims=None, keepdim=False))
case("reductions", "mean", "large_1000", x_of((1000,)), lambda t, a: t["x"].mean(), dict(dims=None, keepdim=False))

for op in ("max", "min"):
    tf = torch.max if op == "max" else torch.min
    for s in ((3, 4), (7,), (), (1, 1)):
        case("reductions", op + "_all", name_shape(s), x_of(s), lambda t, a, tf=tf: tf(t["x"]),
             dtypes=BOTH if s == (3, 4) else ONLY64)
    # ties: PyTorch 1.13 distributes the gradient evenly among tied extremes
    case("reductions", op + "_all", "ties", lambda g: [("x", torch.tensor([[1.0, 3.0, -3.0], [3.0, -3.0, 0.0]]))],
         lambda t, a, tf=tf: tf(t["x"]))
    for s, dim, keep in (((3, 4, 5), 1, False), ((3, 4, 5), 0, True), ((3, 4), -1, False), ((6,), 0, False), ((6,), 0, True),
                         ((4, 1), 1, False), ((0, 3), 1, False), ((), 0, False)):
        case("reductions", op + "_dim", f"{name_shape(s)}_dim{dim}" + ("_keep" if keep else ""), x_of(s),
             lambda t, a, tf=tf: tuple(tf(t["x"], dim=a["dim"], keepdim=a["keepdim"])), dict(dim=dim, keepdim=keep),
             BOTH if s == (3, 4, 5) and dim == 1 else ONLY64)
for op in ("argmax", "argmin"):
    tf = torch.argmax if op == "argmax" else torch.argmin
    for s, dim, keep in (((3, 4), 1, False), ((3, 4), 0, True), ((3, 4), None, False)):
        case("reductions", op, f"{name_shape(s)}_dim{dim}" + ("_keep" if keep else ""), lambda g, s=s: [("x", nograd(randn(g, *s)))],
             lambda t, a, tf=tf: tf(t["x"], dim=a["dim"], keepdim=a["keepdim"]), dict(dim=dim, keepdim=keep), ONLY64)

for s, dims, corr, keep in (((3, 4, 5), None, 1, False), ((3, 4, 5), None, 0, False), ((3, 4, 5), [1], 1, False),
                            ((3, 4, 5), [0, 2], 0, True), ((3, 4, 5), [-1], 1, True), ((7,), [0], 0, False),
                            ((4, 1), [1], 0, False), ((2, 3), [0], 1, False), ((1,), [0], 1, False), ((3, 1), [1], 1, True)):
    case("reductions", "var", f"{name_shape(s)}_dims{dims}_c{corr}" + ("_keep" if keep else ""), x_of(s),
         lambda t, a: torch.var(t["x"], unbiased=a["correction"] == 1) if a["dims"] is None
         else torch.var(t["x"], dim=a["dims"], unbiased=a["correction"] == 1, keepdim=a["keepdim"]),
         dict(dims=dims, correction=corr, keepdim=keep), BOTH if dims is None and corr == 1 else ONLY64)

for s, dims, keep in (((3, 4, 5), [1], False), ((3, 4, 5), [0, 2], True), ((3, 4), [-1], False), ((6,), [0], False),
                      ((4, 1), [1], True), ((0, 3), [1], False), ((2, 0), [1], False)):
    case("reductions", "logsumexp", f"{name_shape(s)}_dims{dims}" + ("_keep" if keep else ""), x_of(s),
         lambda t, a: torch.logsumexp(t["x"], dim=a["dims"], keepdim=a["keepdim"]), dict(dims=dims, keepdim=keep),
         BOTH if s == (3, 4) else ONLY64)
# -inf entries (masked scores) get gradient 0; a row of only -inf gives -inf and NaN gradients in both
case("reductions", "logsumexp", "minus_inf", lambda g: [("x", torch.tensor([[0.5, -math.inf, 1.0], [-math.inf, -math.inf, -math.inf]]))],
     lambda t, a: torch.logsumexp(t["x"], dim=a["dims"], keepdim=a["keepdim"]), dict(dims=[1], keepdim=False))
case("reductions", "logsumexp", "large_values", lambda g: [("x", 1000 + 10 * randn(g, 3, 4))],
     lambda t, a: torch.logsumexp(t["x"], dim=a["dims"], keepdim=a["keepdim"]), dict(dims=[1], keepdim=False))

# ---------------------------------------------------------------------------- softmax

for op, tf in (("softmax", torch.softmax), ("log_softmax", torch.log_softmax)):
    for s, dim in (((3, 5), -1), ((3, 5), 0), ((2, 3, 4), 1), ((7,), 0), ((4, 1), 1), ((0, 3), 1), ((3, 0), 1), ((), 0)):
        case("softmax", op, f"{name_shape(s)}_dim{dim}", x_of(s), lambda t, a, tf=tf: tf(t["x"], a["dim"]), dict(dim=dim),
             BOTH if s == (3, 5) else ONLY64)
    case("softmax", op, "minus_inf", lambda g: [("x", torch.tensor([[0.5, -math.inf, 1.0, -2.0], [-math.inf, 3.0, -math.inf, -math.inf]]))],
         lambda t, a, tf=tf: tf(t["x"], a["dim"]), dict(dim=1))
    case("softmax", op, "large_values", lambda g: [("x", 500 + 30 * randn(g, 3, 6))], lambda t, a, tf=tf: tf(t["x"], a["dim"]),
         dict(dim=1), BOTH)

# ---------------------------------------------------------------------------- views


def view(op, label, s, fn, args, dtypes=ONLY64):
    case("views", op, label, x_of(s), fn, args, dtypes)


for s, shape in (((3, 4), [4, 3]), ((3, 4), [2, -1]), ((2, 3, 4), [6, 4]), ((6,), [1, 6, 1]), ((), [1]), ((1,), []),
                 ((0, 4), [2, 0, 2]), ((0, 4), [-1, 4])):
    view("reshape", f"{name_shape(s)}_to_{shape}", s, lambda t, a: t["x"].reshape(a["shape"]), dict(shape=shape),
         BOTH if s == (2, 3, 4) else ONLY64)
view("transpose_reshape", "3x4_t_to_12", (3, 4), lambda t, a: t["x"].transpose(a["dim0"], a["dim1"]).reshape(a["shape"]),
     dict(dim0=0, dim1=1, shape=[12]))
view("transpose_reshape", "2x3x4_t02_to_4x6", (2, 3, 4), lambda t, a: t["x"].transpose(a["dim0"], a["dim1"]).reshape(a["shape"]),
     dict(dim0=0, dim1=2, shape=[4, 6]))
for s, start, end in (((2, 3, 4), 0, -1), ((2, 3, 4), 1, 2), ((2, 3, 4), 0, 1), ((5,), 0, -1), ((), 0, -1), ((2, 0, 3), 1, 2)):
    view("flatten", f"{name_shape(s)}_{start}_{end}", s, lambda t, a: torch.flatten(t["x"], a["start"], a["end"]),
         dict(start=start, end=end))
for s, d0, d1 in (((3, 4), 0, 1), ((2, 3, 4), 0, 2), ((2, 3, 4), -1, 1), ((3, 4), 1, 1), ((0, 3), 0, 1)):
    view("transpose", f"{name_shape(s)}_{d0}_{d1}", s, lambda t, a: t["x"].transpose(a["dim0"], a["dim1"]),
         dict(dim0=d0, dim1=d1), BOTH if s == (2, 3, 4) and d0 == 0 else ONLY64)
for s, dims in (((2, 3, 4), [2, 0, 1]), ((2, 3, 4), [1, 2, 0]), ((2, 3, 4), [-1, -2, -3]), ((3, 4), [0, 1]), ((2, 1, 3, 2), [3, 1, 0, 2])):
    view("permute", f"{name_shape(s)}_{dims}", s, lambda t, a: t["x"].permute(*a["dims"]), dict(dims=dims),
         BOTH if dims == [2, 0, 1] else ONLY64)
for s, dim, start, length in (((5, 4), 0, 1, 3), ((5, 4), 1, 2, 2), ((5, 4), -1, -3, 2), ((5, 4), 0, 2, 0), ((5,), 0, 0, 5)):
    view("narrow", f"{name_shape(s)}_d{dim}_s{start}_l{length}", s, lambda t, a: t["x"].narrow(a["dim"], a["start"], a["length"]),
         dict(dim=dim, start=start, length=length), BOTH if (dim, start) == (0, 1) else ONLY64)


def py_slice(x, dim, start, end, step):
    idx = [slice(None)] * x.dim()
    idx[dim] = slice(start, end, step)
    return x[tuple(idx)]


for s, dim, start, end, step in (((7, 3), 0, 1, 6, 2), ((7, 3), 0, 0, 7, 3), ((4, 9), 1, -7, -1, 3), ((4, 9), -1, 2, 100, 4),
                                 ((6,), 0, 0, 6, 1), ((6,), 0, 4, 2, 1), ((2, 5, 3), 1, 1, 5, 2)):
    view("slice", f"{name_shape(s)}_d{dim}_{start}_{end}_{step}", s,
         lambda t, a: py_slice(t["x"], a["dim"], a["start"], a["end"], a["step"]), dict(dim=dim, start=start, end=end, step=step),
         BOTH if (s, step) == ((7, 3), 2) else ONLY64)
for s, dim, index in (((3, 4), 0, 1), ((3, 4), 1, -1), ((2, 3, 4), 1, 2), ((5,), 0, 3), ((1, 4), 0, 0)):
    view("select", f"{name_shape(s)}_d{dim}_i{index}", s, lambda t, a: t["x"].select(a["dim"], a["index"]),
         dict(dim=dim, index=index), BOTH if s == (2, 3, 4) else ONLY64)
for s, dim in (((3, 1, 4), 1), ((3, 1, 4), 0), ((1, 3, 1, 4, 1), None), ((1,), 0), ((1,), None), ((3, 1), -1), ((0, 1), 1)):
    view("squeeze", f"{name_shape(s)}_d{dim}", s, lambda t, a: t["x"].squeeze() if a["dim"] is None else t["x"].squeeze(a["dim"]),
         dict(dim=dim), BOTH if s == (3, 1, 4) and dim == 1 else ONLY64)
for s, dim in (((3, 4), 0), ((3, 4), 1), ((3, 4), 2), ((3, 4), -1), ((3, 4), -3), ((), 0), ((0,), 1)):
    view("unsqueeze", f"{name_shape(s)}_d{dim}", s, lambda t, a: t["x"].unsqueeze(a["dim"]), dict(dim=dim),
         BOTH if (s, dim) == ((3, 4), 1) else ONLY64)
for s, shape in (((3, 1), [3, 4]), ((3, 1), [2, 3, 5]), ((1, 4), [-1, 4]), ((4,), [3, 2, 4]), ((1, 1), [2, -1, 3]), ((), [2, 3]),
                 ((3, 1), [3, 0]), ((2, 3), [2, 3])):
    view("expand", f"{name_shape(s)}_to_{shape}", s, lambda t, a: t["x"].expand(*a["shape"]), dict(shape=shape),
         BOTH if shape == [2, 3, 5] else ONLY64)

# ---------------------------------------------------------------------------- joining


def xs(*shapes):
    return lambda g: [(f"x{i}", randn(g, *s)) for i, s in enumerate(shapes)]


def xs_list(t):
    return [t[k] for k in sorted((k for k in t if k.startswith("x") and k[1:].isdigit()), key=lambda k: int(k[1:]))]


for shapes, dim in ((((2, 3), (4, 3)), 0), (((2, 3), (2, 1), (2, 4)), 1), (((2, 3, 4), (2, 3, 2)), -1), (((3,), (0,), (2,)), 0),
                    (((2, 0), (2, 3)), 1), (((1, 2),), 0)):
    case("joining", "concat", f"{name_shape(*shapes)}_d{dim}", xs(*shapes), lambda t, a: torch.cat(xs_list(t), a["dim"]),
         dict(dim=dim), BOTH if dim == 1 and len(shapes) == 3 else ONLY64)
for shapes, dim in ((((2, 3),) * 3, 0), (((2, 3),) * 2, 1), (((2, 3),) * 2, 2), (((2, 3),) * 2, -1), (((4,),) * 4, 0),
                    (((),) * 3, 0), (((0, 2),) * 2, 1)):
    case("joining", "stack", f"{name_shape(*shapes)}_d{dim}", xs(*shapes), lambda t, a: torch.stack(xs_list(t), a["dim"]),
         dict(dim=dim), BOTH if (len(shapes), dim) == (2, 1) else ONLY64)
# not generated: splitting a size-0 dimension by a size (PyTorch returns one empty piece, Backprop none)
for s, size, dim in (((7, 3), 3, 0), ((7, 3), 7, 0), ((7, 3), 10, 0), ((2, 6), [1, 3, 2], 1), ((2, 6), [6, 0], -1), ((5,), 1, 0),
                     ((4, 2), [0, 4], 0)):
    case("joining", "split", f"{name_shape(s)}_{size}_d{dim}", x_of(s), lambda t, a: tuple(torch.split(t["x"], a["size"], a["dim"])),
         dict(size=size, dim=dim), BOTH if size == 3 else ONLY64)
for s, chunks, dim in (((7, 3), 3, 0), ((6, 4), 2, 1), ((5,), 5, 0), ((2, 5), 4, 1)):
    case("joining", "chunk", f"{name_shape(s)}_{chunks}_d{dim}", x_of(s), lambda t, a: tuple(torch.chunk(t["x"], a["chunks"], a["dim"])),
         dict(chunks=chunks, dim=dim))

# ---------------------------------------------------------------------------- indexing

for s, dim, idx in (((5, 3), 0, [4, 0, 2]), ((5, 3), 0, [1, 1, 3, 1]), ((3, 6), 1, [5, 0, 5]), ((2, 3, 4), 1, [2, 0]),
                    ((5, 3), 0, []), ((4,), 0, [3, 3, 0]), ((5, 3), -1, [2])):
    case("indexing", "index_select", f"{name_shape(s)}_d{dim}_{idx}",
         lambda g, s=s, idx=idx: [("x", randn(g, *s)), ("index", torch.tensor(idx, dtype=I64))],
         lambda t, a: torch.index_select(t["x"], a["dim"], t["index"]), dict(dim=dim),
         BOTH if idx == [1, 1, 3, 1] else ONLY64)
for s, dim, si in (((3, 4), 1, (3, 2)), ((3, 4), 0, (5, 4)), ((3, 4), 1, (2, 6)), ((2, 3, 4), 2, (2, 3, 1)), ((2, 3, 4), 0, (1, 2, 3)),
                   ((6,), 0, (4,)), ((3, 4), 1, (3, 0))):
    case("indexing", "gather", f"{name_shape(s)}_d{dim}_{name_shape(si)}",
         lambda g, s=s, dim=dim, si=si: [("x", randn(g, *s)), ("index", ints(g, 0, s[dim], *si))],
         lambda t, a: torch.gather(t["x"], a["dim"], t["index"]), dict(dim=dim),
         BOTH if (s, si) == ((3, 4), (3, 2)) else ONLY64)
for s, dim, si, ss in (((3, 4), 1, (3, 2), (3, 2)), ((3, 4), 0, (5, 4), (5, 4)), ((3, 4), 1, (2, 3), (3, 5)),
                       ((2, 3, 4), 2, (2, 3, 6), (2, 3, 6)), ((5,), 0, (8,), (8,)), ((3, 4), 0, (0, 4), (2, 4))):
    case("indexing", "scatter_add", f"{name_shape(s)}_d{dim}_{name_shape(si)}_src{name_shape(ss)}",
         # PyTorch 1.13 cannot differentiate src when it is larger than index (its backward gathers with index's shape)
         lambda g, s=s, dim=dim, si=si, ss=ss: [("x", randn(g, *s)), ("index", ints(g, 0, s[dim], *si)),
                                                ("src", randn(g, *ss) if si == ss else nograd(randn(g, *ss)))],
         lambda t, a: torch.scatter_add(t["x"], a["dim"], t["index"], t["src"]), dict(dim=dim),
         BOTH if (s, si) == ((3, 4), (3, 2)) else ONLY64)
for si, n in (((5,), 4), ((2, 3), 5), ((0,), 3), ((), 3)):
    case("indexing", "one_hot", f"{name_shape(si)}_n{n}", lambda g, si=si, n=n: [("index", ints(g, 0, n, *si))],
         lambda t, a: F.one_hot(t["index"], a["num_classes"]), dict(num_classes=n), ONLY64)

# ---------------------------------------------------------------------------- layers


def linear_inputs(sx, out_f, bias):
    in_f = sx[-1]

    def make(g):
        r = [("x", randn(g, *sx)), ("weight", randn(g, out_f, in_f) / math.sqrt(in_f))]
        if bias:
            r.append(("bias", randn(g, out_f)))
        return r
    return make


for op in ("linear", "linear_layer"):
    for sx, out_f, bias in (((5, 4), 3, True), ((5, 4), 3, False), ((4,), 3, True), ((2, 3, 4), 6, True), ((0, 4), 3, True),
                            ((1, 1), 1, True), ((16, 33), 17, True)):
        case("layers", op, f"{name_shape(sx)}_out{out_f}" + ("" if bias else "_nobias"), linear_inputs(sx, out_f, bias),
             lambda t, a: F.linear(t["x"], t["weight"], t.get("bias")), dict(bias=bias),
             BOTH if sx in ((5, 4), (16, 33)) and bias else ONLY64)
    case("layers", op, "x_no_grad", lambda g: [("x", nograd(randn(g, 5, 4))), ("weight", randn(g, 3, 4)), ("bias", randn(g, 3))],
         lambda t, a: F.linear(t["x"], t["weight"], t.get("bias")), dict(bias=True))
for si, num, dim in (((5,), 7, 3), ((2, 3), 7, 4), ((6,), 3, 2), ((0,), 4, 3), ((1,), 1, 1)):
    case("layers", "embedding", f"{name_shape(si)}_n{num}_d{dim}",
         lambda g, si=si, num=num, dim=dim: [("weight", randn(g, num, dim)), ("index", ints(g, 0, num, *si))],
         lambda t, a: F.embedding(t["index"], t["weight"]), dict(), BOTH if si == (2, 3) else ONLY64)
for module in (False, True):
    for s, p in (((3, 4), 0.5), ((2, 3, 4), 0.9), ((0,), 0.5)):
        case("layers", "dropout_eval", ("module_" if module else "functional_") + f"{name_shape(s)}_p{p}", x_of(s),
             lambda t, a: F.dropout(t["x"], a["p"], training=False), dict(p=p, module=module), ONLY64)

# ---------------------------------------------------------------------------- losses

REDUCTIONS = ("mean", "sum", "none")


def ce_idx(n, c, ignore=None, ignore_rows=()):
    def make(g):
        y = ints(g, 0, c, *((n,) if n is not None else ()))
        for r in ignore_rows:
            y[r] = ignore
        return [("input", 2 * randn(g, *((n, c) if n is not None else (c,)))), ("target", y)]
    return make


def ce(t, a):
    return F.cross_entropy(t["input"], t["target"], reduction=a["reduction"], ignore_index=a["ignore_index"],
                           label_smoothing=a["label_smoothing"])


for red in REDUCTIONS:
    for n, c in ((6, 5), (1, 3), (4, 1)):
        case("losses", "cross_entropy", f"idx_{n}x{c}_{red}", ce_idx(n, c), ce,
             dict(reduction=red, ignore_index=-100, label_smoothing=0.0), BOTH if (n, c) == (6, 5) else ONLY64)
    case("losses", "cross_entropy", f"idx_1d_{red}", ce_idx(None, 5), ce, dict(reduction=red, ignore_index=-100, label_smoothing=0.0))
    case("losses", "cross_entropy", f"idx_ignore_{red}", ce_idx(6, 4, ignore=-100, ignore_rows=(1, 4)), ce,
         dict(reduction=red, ignore_index=-100, label_smoothing=0.0))
    case("losses", "cross_entropy", f"idx_ignore2_{red}", ce_idx(8, 4), ce, dict(reduction=red, ignore_index=2, label_smoothing=0.0))
    case("losses", "cross_entropy", f"idx_smooth_{red}", ce_idx(6, 5), ce, dict(reduction=red, ignore_index=-100, label_smoothing=0.1),
         BOTH if red == "mean" else ONLY64)
    case("losses", "cross_entropy", f"idx_smooth_ignore_{red}", ce_idx(6, 4, ignore=-100, ignore_rows=(0,)), ce,
         dict(reduction=red, ignore_index=-100, label_smoothing=0.25))

    def probs_make(g, n=6, c=5, target_grad=True):
        p = torch.softmax(2 * randn(g, n, c), dim=1)
        return [("input", 2 * randn(g, n, c)), ("target", p if target_grad else nograd(p))]
    case("losses", "cross_entropy", f"probs_{red}", probs_make, ce, dict(reduction=red, ignore_index=-100, label_smoothing=0.0),
         BOTH if red == "mean" else ONLY64)
    case("losses", "cross_entropy", f"probs_smooth_{red}", probs_make, ce, dict(reduction=red, ignore_index=-100, label_smoothing=0.2))
case("losses", "cross_entropy", "probs_1d", lambda g: [("input", randn(g, 5)), ("target", torch.softmax(randn(g, 5), 0))], ce,
     dict(reduction="mean", ignore_index=-100, label_smoothing=0.0))
case("losses", "cross_entropy", "probs_unnormalized", lambda g: [("input", randn(g, 3, 4)), ("target", nograd(2 * unit(g, 3, 4)))], ce,
     dict(reduction="mean", ignore_index=-100, label_smoothing=0.0))
case("losses", "cross_entropy", "large_logits", lambda g: [("input", 300 * randn(g, 4, 6)), ("target", ints(g, 0, 6, 4))], ce,
     dict(reduction="mean", ignore_index=-100, label_smoothing=0.0), BOTH)
case("losses", "cross_entropy", "all_ignored_mean", ce_idx(3, 4, ignore=-100, ignore_rows=(0, 1, 2)), ce,
     dict(reduction="mean", ignore_index=-100, label_smoothing=0.0))
case("losses", "cross_entropy", "all_ignored_sum", ce_idx(3, 4, ignore=-100, ignore_rows=(0, 1, 2)), ce,
     dict(reduction="sum", ignore_index=-100, label_smoothing=0.0))
case("losses", "cross_entropy", "all_ignored_smooth_mean", ce_idx(3, 4, ignore=-100, ignore_rows=(0, 1, 2)), ce,
     dict(reduction="mean", ignore_index=-100, label_smoothing=0.2))
case("losses", "cross_entropy", "empty_batch_mean", lambda g: [("input", randn(g, 0, 4)), ("target", ints(g, 0, 4, 0))], ce,
     dict(reduction="mean", ignore_index=-100, label_smoothing=0.0))
case("losses", "cross_entropy", "empty_batch_sum", lambda g: [("input", randn(g, 0, 4)), ("target", ints(g, 0, 4, 0))], ce,
     dict(reduction="sum", ignore_index=-100, label_smoothing=0.0))
case("losses", "cross_entropy", "empty_batch_none", lambda g: [("input", randn(g, 0, 4)), ("target", ints(g, 0, 4, 0))], ce,
     dict(reduction="none", ignore_index=-100, label_smoothing=0.0))

for red in REDUCTIONS:
    def nll_make(g, n=6, c=5, ignore_rows=()):
        y = ints(g, 0, c, n)
        for r in ignore_rows:
            y[r] = -100
        return [("input", torch.log_softmax(randn(g, n, c), 1)), ("target", y)]
    nll = lambda t, a: F.nll_loss(t["input"], t["target"], reduction=a["reduction"], ignore_index=a["ignore_index"])
    case("losses", "nll_loss", f"6x5_{red}", nll_make, nll, dict(reduction=red, ignore_index=-100), BOTH if red == "mean" else ONLY64)
    case("losses", "nll_loss", f"ignore_{red}", lambda g: nll_make(g, 7, 3, (2, 3)), nll, dict(reduction=red, ignore_index=-100))
    case("losses", "nll_loss", f"all_ignored_{red}", lambda g: nll_make(g, 3, 4, (0, 1, 2)), nll, dict(reduction=red, ignore_index=-100))
    case("losses", "nll_loss", f"ignore1_{red}", lambda g: nll_make(g, 7, 3), nll, dict(reduction=red, ignore_index=1))
    case("losses", "nll_loss", f"raw_scores_{red}", lambda g: [("input", randn(g, 4, 3)), ("target", ints(g, 0, 3, 4))], nll,
         dict(reduction=red, ignore_index=-100))

    for s in ((4, 3), (7,), (2, 3, 2), (), (0, 3)):
        case("losses", "mse", f"{name_shape(s)}_{red}", lambda g, s=s: [("input", randn(g, *s)), ("target", randn(g, *s))],
             lambda t, a: F.mse_loss(t["input"], t["target"], reduction=a["reduction"]), dict(reduction=red),
             BOTH if s == (4, 3) else ONLY64)
        case("losses", "bce", f"{name_shape(s)}_{red}", lambda g, s=s: [("input", unit(g, *s)), ("target", unit(g, *s))],
             lambda t, a: F.binary_cross_entropy(t["input"], t["target"], reduction=a["reduction"]), dict(reduction=red),
             BOTH if s == (4, 3) else ONLY64)
        case("losses", "bce_logits", f"{name_shape(s)}_{red}", lambda g, s=s: [("input", 3 * randn(g, *s)), ("target", unit(g, *s))],
             lambda t, a: F.binary_cross_entropy_with_logits(t["input"], t["target"], reduction=a["reduction"]), dict(reduction=red),
             BOTH if s == (4, 3) else ONLY64)
    case("losses", "bce", f"hard_targets_{red}", lambda g: [("input", unit(g, 6)), ("target", nograd(mask(g, 6)))],
         lambda t, a: F.binary_cross_entropy(t["input"], t["target"], reduction=a["reduction"]), dict(reduction=red))
    case("losses", "bce_logits", f"large_{red}",
         lambda g: [("input", torch.tensor([-100.0, -30.0, -1.0, 0.0, 1.0, 30.0, 100.0])), ("target", mask(g, 7))],
         lambda t, a: F.binary_cross_entropy_with_logits(t["input"], t["target"], reduction=a["reduction"]), dict(reduction=red))
# probabilities of exactly 0 and 1 (logs clamped at -100 in both); the target gradient is not compared here,
# PyTorch's is log(1-p) - log(p) unclamped, i.e. infinite
case("losses", "bce", "saturated", lambda g: [("input", torch.tensor([0.0, 1.0, 0.0, 1.0, 0.5])),
                                             ("target", nograd(torch.tensor([0.0, 1.0, 1.0, 0.0, 0.3])))],
     lambda t, a: F.binary_cross_entropy(t["input"], t["target"], reduction=a["reduction"]), dict(reduction="sum"))

# ---------------------------------------------------------------------------- non-contiguous inputs

# The same ops on transposed views (strided kernels instead of the contiguous fast paths).
T_F = "strided"
case(T_F, "add", "at_4x3_3x4", ab((4, 3), (3, 4)), lambda t, a: t["a"] + t["b"], transpose=("a",))
case(T_F, "mul", "at_bt_3x5_3x1", ab((3, 5), (3, 1)), lambda t, a: t["a"] * t["b"], transpose=("a", "b"))
case(T_F, "div", "bt_2x4x3_3x4", ab((2, 3, 4), (4, 3), gen_b=away), lambda t, a: t["a"] / t["b"], transpose=("b",))
case(T_F, "pow_tensor", "at_4x3_4", ab((4, 3), (4,), gen_a=pos), lambda t, a: torch.pow(t["a"], t["b"]), transpose=("a",))
case(T_F, "maximum", "at_bt_3x4", ab((3, 4), (3, 4)), lambda t, a: torch.maximum(t["a"], t["b"]), transpose=("a", "b"))
case(T_F, "where", "at_3x4",
     lambda g: [("cond", nograd(mask(g, 4, 3))), ("a", randn(g, 3, 4)), ("b", randn(g, 4, 3))],
     lambda t, a: torch.where(t["cond"] != 0, t["a"], t["b"]), transpose=("a",))
for op, f in (("exp", torch.exp), ("tanh", torch.tanh), ("sigmoid", torch.sigmoid), ("relu", torch.relu), ("abs", torch.abs)):
    case(T_F, op, "xt_5x3", x_of((5, 3)), lambda t, a, f=f: f(t["x"]), transpose=("x",))
case(T_F, "gelu", "xt_5x3", x_of((5, 3)), lambda t, a: F.gelu(t["x"]), dict(approximate="none"), transpose=("x",))
case(T_F, "pow_scalar", "xt_5x3", x_of((5, 3), pos), lambda t, a: t["x"] ** a["p"], dict(p=1.5), transpose=("x",))
case(T_F, "clamp", "xt_5x3", x_of((5, 3)), lambda t, a: torch.clamp(t["x"], min=a["min"], max=a["max"]), dict(min=-0.5, max=0.7),
     transpose=("x",))
case(T_F, "sum", "xt_2x5x3_dims1", x_of((2, 5, 3)), lambda t, a: t["x"].sum(dim=a["dims"], keepdim=a["keepdim"]),
     dict(dims=[1], keepdim=False), transpose=("x",))
case(T_F, "mean", "xt_5x3_all", x_of((5, 3)), lambda t, a: t["x"].mean(), dict(dims=None, keepdim=False), transpose=("x",))
case(T_F, "max_dim", "xt_5x3_dim1", x_of((5, 3)), lambda t, a: tuple(torch.max(t["x"], dim=a["dim"], keepdim=a["keepdim"])),
     dict(dim=1, keepdim=False), transpose=("x",))
case(T_F, "var", "xt_5x3_dims1", x_of((5, 3)), lambda t, a: torch.var(t["x"], dim=a["dims"], keepdim=a["keepdim"]),
     dict(dims=[1], correction=1, keepdim=False), transpose=("x",))
case(T_F, "logsumexp", "xt_5x3_dims1", x_of((5, 3)), lambda t, a: torch.logsumexp(t["x"], dim=a["dims"], keepdim=a["keepdim"]),
     dict(dims=[1], keepdim=False), transpose=("x",))
for op, tf in (("softmax", torch.softmax), ("log_softmax", torch.log_softmax)):
    for dim in (0, 1):
        case(T_F, op, f"xt_5x3_dim{dim}", x_of((5, 3)), lambda t, a, tf=tf: tf(t["x"], a["dim"]), dict(dim=dim), transpose=("x",))
case(T_F, "matmul", "at_batched", ab((2, 4, 3), (4, 5)), lambda t, a: torch.matmul(t["a"], t["b"]), transpose=("a",))
case(T_F, "matmul", "bt_vector", ab((4,), (3, 4)), lambda t, a: torch.matmul(t["a"], t["b"]), transpose=("b",))
case(T_F, "linear", "xt_4x5", lambda g: [("x", randn(g, 4, 5)), ("weight", randn(g, 3, 4)), ("bias", randn(g, 3))],
     lambda t, a: F.linear(t["x"], t["weight"], t["bias"]), dict(bias=True), transpose=("x",))
case(T_F, "linear", "wt_5x4", lambda g: [("x", randn(g, 5, 4)), ("weight", randn(g, 4, 3)), ("bias", randn(g, 3))],
     lambda t, a: F.linear(t["x"], t["weight"], t["bias"]), dict(bias=True), transpose=("weight",))
case(T_F, "reshape", "xt_3x4_to_12", x_of((3, 4)), lambda t, a: t["x"].reshape(a["shape"]), dict(shape=[12]), transpose=("x",))
case(T_F, "slice", "xt_5x3_d1_step2", x_of((5, 3)), lambda t, a: py_slice(t["x"], a["dim"], a["start"], a["end"], a["step"]),
     dict(dim=1, start=0, end=5, step=2), transpose=("x",))
case(T_F, "concat", "x0t_x1_d0", xs((4, 3), (2, 4)), lambda t, a: torch.cat(xs_list(t), a["dim"]), dict(dim=0), transpose=("x0",))
case(T_F, "index_select", "xt_4x3_d1", lambda g: [("x", randn(g, 4, 3)), ("index", torch.tensor([3, 0, 3], dtype=I64))],
     lambda t, a: torch.index_select(t["x"], a["dim"], t["index"]), dict(dim=1), transpose=("x",))
case(T_F, "gather", "xt_4x3_d1", lambda g: [("x", randn(g, 4, 3)), ("index", ints(g, 0, 4, 3, 2))],
     lambda t, a: torch.gather(t["x"], a["dim"], t["index"]), dict(dim=1), transpose=("x",))
case(T_F, "scatter_add", "xt_srct", lambda g: [("x", randn(g, 4, 3)), ("index", ints(g, 0, 4, 3, 2)), ("src", randn(g, 2, 3))],
     lambda t, a: torch.scatter_add(t["x"], a["dim"], t["index"], t["src"]), dict(dim=1), transpose=("x", "src"))
case(T_F, "cross_entropy", "input_t", lambda g: [("input", randn(g, 5, 4)), ("target", ints(g, 0, 5, 4))], ce,
     dict(reduction="mean", ignore_index=-100, label_smoothing=0.0), transpose=("input",))
case(T_F, "cross_entropy", "probs_t", lambda g: [("input", randn(g, 4, 5)), ("target", torch.softmax(randn(g, 5, 4), 0))], ce,
     dict(reduction="sum", ignore_index=-100, label_smoothing=0.1), transpose=("target",))
case(T_F, "nll_loss", "input_t", lambda g: [("input", randn(g, 5, 4)), ("target", ints(g, 0, 5, 4))],
     lambda t, a: F.nll_loss(t["input"], t["target"], reduction=a["reduction"], ignore_index=a["ignore_index"]),
     dict(reduction="mean", ignore_index=-100), transpose=("input",))
case(T_F, "mse", "input_t", lambda g: [("input", randn(g, 4, 3)), ("target", randn(g, 3, 4))],
     lambda t, a: F.mse_loss(t["input"], t["target"], reduction=a["reduction"]), dict(reduction="mean"), transpose=("input",))
case(T_F, "bce_logits", "input_t", lambda g: [("input", randn(g, 4, 3)), ("target", unit(g, 3, 4))],
     lambda t, a: F.binary_cross_entropy_with_logits(t["input"], t["target"], reduction=a["reduction"]), dict(reduction="mean"),
     transpose=("input",))

# ---------------------------------------------------------------------------- partial requires_grad and composites

P_F = "composite"
case(P_F, "concat", "x1_no_grad", lambda g: [("x0", randn(g, 2, 3)), ("x1", nograd(randn(g, 1, 3))), ("x2", randn(g, 2, 3))],
     lambda t, a: torch.cat(xs_list(t), a["dim"]), dict(dim=0))
case(P_F, "matmul", "b_no_grad", lambda g: [("a", randn(g, 2, 3, 4)), ("b", nograd(randn(g, 4, 2)))],
     lambda t, a: torch.matmul(t["a"], t["b"]))
case(P_F, "linear", "weight_no_grad", lambda g: [("x", randn(g, 5, 4)), ("weight", nograd(randn(g, 3, 4))), ("bias", randn(g, 3))],
     lambda t, a: F.linear(t["x"], t["weight"], t["bias"]), dict(bias=True))
case(P_F, "where", "b_no_grad", lambda g: [("cond", nograd(mask(g, 3, 4))), ("a", randn(g, 3, 4)), ("b", nograd(randn(g, 4)))],
     lambda t, a: torch.where(t["cond"] != 0, t["a"], t["b"]))
# a tensor used several times: the gradients of all uses add up
case(P_F, "x_used_twice", "3x4", x_of((3, 4)), lambda t, a: t["x"] * torch.tanh(t["x"]) + torch.exp(t["x"]).sum(-1, keepdim=True))
case(P_F, "tied_weight", "5x4_4x3", lambda g: [("x", randn(g, 5, 4)), ("w", randn(g, 4, 3))],
     lambda t, a: torch.tanh(t["x"] @ t["w"]) @ t["w"].t())
case(P_F, "attention", "2x3x4", lambda g: [("q", randn(g, 2, 3, 4)), ("k", randn(g, 2, 5, 4)), ("v", randn(g, 2, 5, 4))],
     lambda t, a: torch.softmax(t["q"] @ t["k"].transpose(-1, -2) / 2.0, -1) @ t["v"])

# ---------------------------------------------------------------------------- tensor API (issue 11): ops_tensorapi.json

T_F = "tensorapi"
for op, f in (("sin", torch.sin), ("cos", torch.cos), ("floor", torch.floor), ("ceil", torch.ceil), ("round", torch.round), ("erf", torch.erf)):
    for s in ((3, 4), (2, 3, 4), ()):
        case(T_F, op, name_shape(s), x_of(s, lambda g, *sh: 3 * randn(g, *sh)), lambda t, a, f=f: f(t["x"]),
             dtypes=BOTH if s == (3, 4) else ONLY64)
# halves round to even
case(T_F, "round", "halves", lambda g: [("x", torch.tensor([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.5]))], lambda t, a: torch.round(t["x"]))

# composites: std, norm, masked_fill, tril/triu, repeat, flip, roll, cumsum, einsum
case(T_F, "std", "all", x_of((3, 4)), lambda t, a: torch.std(t["x"]), dict(dims=None, correction=1, keepdim=False))
case(T_F, "std", "dim1_c0_keep", x_of((3, 4)), lambda t, a: torch.std(t["x"], dim=1, unbiased=False, keepdim=True),
     dict(dims=[1], correction=0, keepdim=True))
case(T_F, "std", "dims02", x_of((2, 3, 4)), lambda t, a: torch.std(t["x"], dim=(0, 2)), dict(dims=[0, 2], correction=1, keepdim=False), dtypes=ONLY64)
for p_ in (2.0, 1.0, 3.0, float("inf")):
    case(T_F, "norm", f"p{p_}_all", x_of((3, 4)), lambda t, a: torch.linalg.vector_norm(t["x"], ord=float(a["p"])),
         dict(p=p_ if p_ != float("inf") else "inf", dims=None, keepdim=False))
    case(T_F, "norm", f"p{p_}_dim1_keep", x_of((2, 3, 4)), lambda t, a: torch.linalg.vector_norm(t["x"], ord=float(a["p"]), dim=1, keepdim=True),
         dict(p=p_ if p_ != float("inf") else "inf", dims=[1], keepdim=True), dtypes=ONLY64)
case(T_F, "masked_fill", "3x4", lambda g: [("x", randn(g, 3, 4)), ("mask", nograd(mask(g, 3, 4)))],
     lambda t, a: t["x"].masked_fill(t["mask"] != 0, a["value"]), dict(value=-1.5))
case(T_F, "masked_fill", "broadcast_row", lambda g: [("x", randn(g, 3, 4)), ("mask", nograd(mask(g, 4)))],
     lambda t, a: t["x"].masked_fill(t["mask"] != 0, a["value"]), dict(value=2.0), dtypes=ONLY64)
for k in (0, 1, -1):
    case(T_F, "tril", f"d{k}", x_of((2, 3, 4)), lambda t, a: torch.tril(t["x"], a["diagonal"]), dict(diagonal=k), dtypes=BOTH if k == 0 else ONLY64)
    case(T_F, "triu", f"d{k}", x_of((4, 3)), lambda t, a: torch.triu(t["x"], a["diagonal"]), dict(diagonal=k), dtypes=BOTH if k == 0 else ONLY64)
for label, s_, r in (("2x3_r2x1", (2, 3), [2, 1]), ("3_r2x2", (3,), [2, 2]), ("2x3_r1x2x3", (2, 3), [1, 2, 3])):
    case(T_F, "repeat", label, x_of(s_), lambda t, a: t["x"].repeat(*a["repeats"]), dict(repeats=r), dtypes=BOTH if label == "2x3_r2x1" else ONLY64)
for label, dims in (("d0", [0]), ("d0_2", [0, 2]), ("dm1", [-1])):
    case(T_F, "flip", label, x_of((2, 3, 4)), lambda t, a: torch.flip(t["x"], a["dims"]), dict(dims=dims), dtypes=BOTH if label == "d0" else ONLY64)
for label, sh, dims in (("s1_d0", [1], [0]), ("s-1_2_d0_2", [-1, 2], [0, 2]), ("s5_flat", [5], None)):
    case(T_F, "roll", label, x_of((2, 3, 4)), lambda t, a: torch.roll(t["x"], a["shifts"], a["dims"]) if a["dims"] else torch.roll(t["x"], a["shifts"]),
         dict(shifts=sh, dims=dims), dtypes=BOTH if label == "s1_d0" else ONLY64)
for d in (0, 1, -1):
    case(T_F, "cumsum", f"d{d}", x_of((2, 3, 4)), lambda t, a: torch.cumsum(t["x"], a["dim"]), dict(dim=d), dtypes=BOTH if d == -1 else ONLY64)
for eq_, shapes in (("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]), ("bhqd,bhkd->bhqk", [(2, 2, 3, 4), (2, 2, 5, 4)]),
                    ("ij,jk->ik", [(3, 4), (4, 2)]), ("i,i->", [(5,), (5,)]), ("bi,ij,bj->b", [(2, 3), (3, 4), (2, 4)]),
                    ("ij->ji", [(3, 4)]), ("ij,kj", [(2, 3), (4, 3)]),
                    # ellipsis (broadcast batch, in the middle, summed away), diagonals, size-1 broadcasting
                    ("...ij,...jk->...ik", [(2, 3, 4), (4, 5)]), ("i...,i->...", [(3, 2, 2), (3,)]), ("...i->...", [(2, 3, 4)]),
                    ("ii->i", [(3, 3)]), ("ii", [(4, 4)]), ("bii,bi->b", [(2, 3, 3), (2, 3)]), ("bij,bjk->bik:b1", [(1, 3, 4), (2, 4, 5)])):
    label_ = eq_.replace(",", "_").replace("->", "_to_").replace("...", "E").replace(":", "_")
    eq_ = eq_.split(":")[0]
    case(T_F, "einsum", label_, lambda g, shapes=shapes: [(f"x{i}", randn(g, *s_)) for i, s_ in enumerate(shapes)],
         lambda t, a: torch.einsum(a["equation"], *xs_list(t)), dict(equation=eq_), dtypes=BOTH if eq_ == "bhqd,bhkd->bhqk" else ONLY64)

# sorting (random values: no ties, so PyTorch's unstable sort gives the same indices)
for d, desc in ((-1, False), (0, True), (1, False)):
    case(T_F, "sort", f"d{d}_desc{desc}", x_of((2, 3, 4)), lambda t, a: torch.sort(t["x"], dim=a["dim"], descending=a["descending"]),
         dict(dim=d, descending=desc), dtypes=BOTH if d == -1 else ONLY64)
    case(T_F, "argsort", f"d{d}_desc{desc}", x_of((2, 3, 4)), lambda t, a: torch.argsort(nograd_t(t["x"]), dim=a["dim"], descending=a["descending"]),
         dict(dim=d, descending=desc), dtypes=ONLY64)
for k, d, largest in ((2, -1, True), (1, 0, False), (3, 1, True)):
    case(T_F, "topk", f"k{k}_d{d}_largest{largest}", x_of((2, 3, 4)),
         lambda t, a: torch.topk(t["x"], a["k"], dim=a["dim"], largest=a["largest"]), dict(k=k, dim=d, largest=largest),
         dtypes=BOTH if d == -1 else ONLY64)

# C# indexing: each form is replayed with the same indices written in C#
GETITEM = {"col0": lambda x: x[:, 0], "inner_rows": lambda x: x[1:-1], "last_row_from1": lambda x: x[-1, 1:],
           "ellipsis_last": lambda x: x[..., -1]}
for form, f in GETITEM.items():
    case(T_F, "getitem", form, x_of((4, 3)), lambda t, a, f=f: f(t["x"]), dict(form=form), dtypes=BOTH if form == "col0" else ONLY64)
case(T_F, "masked_select", "3x4", lambda g: [("x", randn(g, 3, 4)), ("mask", nograd(mask(g, 3, 4)))],
     lambda t, a: t["x"][t["mask"] != 0])
case(T_F, "masked_select", "rows", lambda g: [("x", randn(g, 4, 3)), ("mask", nograd(torch.tensor([1.0, 0.0, 1.0, 1.0])))],
     lambda t, a: t["x"][t["mask"] != 0], dtypes=ONLY64)

# ---------------------------------------------------------------------------- training trajectories

TRAIN_STEPS = 20
N_BATCHES, BATCH = 4, 8
SIZES = (8, 16, 16, 4)


def training_fixture():
    g = torch.Generator().manual_seed(20240917)
    # drawn in float32, so the float32 and float64 runs start from exactly the same numbers
    x = torch.randn(N_BATCHES * BATCH, SIZES[0], generator=g, dtype=F32)
    y = torch.randint(0, SIZES[-1], (N_BATCHES * BATCH,), generator=g, dtype=I64)
    init = {}
    for i, (fi, fo) in enumerate(zip(SIZES[:-1], SIZES[1:])):
        bound = 1 / math.sqrt(fi)  # nn.Linear's default initialization
        init[f"{2 * i}.weight"] = (torch.rand(fo, fi, generator=g, dtype=F32) * 2 - 1) * bound
        init[f"{2 * i}.bias"] = (torch.rand(fo, generator=g, dtype=F32) * 2 - 1) * bound

    runs = []
    for act_name in ("tanh", "relu"):
        for opt_name, opt_args in (("sgd", dict(lr=0.1, momentum=0.9)), ("adam", dict(lr=0.01))):
            for dt in (F32, F64):
                act_mod = torch.nn.Tanh if act_name == "tanh" else torch.nn.ReLU
                layers = []
                for i, (fi, fo) in enumerate(zip(SIZES[:-1], SIZES[1:])):
                    layers.append(torch.nn.Linear(fi, fo, dtype=dt))
                    if i < len(SIZES) - 2:
                        layers.append(act_mod())
                model = torch.nn.Sequential(*layers)
                with torch.no_grad():
                    for k, p in model.named_parameters():
                        p.copy_(init[k].to(dt))
                opt = torch.optim.SGD(model.parameters(), **opt_args) if opt_name == "sgd" else torch.optim.Adam(model.parameters(), **opt_args)
                losses = []
                for step in range(TRAIN_STEPS):
                    b = step % N_BATCHES
                    xb, yb = x[b * BATCH:(b + 1) * BATCH].to(dt), y[b * BATCH:(b + 1) * BATCH]
                    loss = F.cross_entropy(model(xb), yb)
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    losses.append(enc_value(loss.item(), F64))
                runs.append(dict(id=f"{act_name}_{opt_name}_{DT_SHORT[dt]}", activation=act_name, optimizer=opt_name,
                                 optimizer_args=opt_args, dtype=DT_NAME[dt], losses=losses,
                                 final={k: tensor_json(p.detach()) for k, p in model.named_parameters()}))
    return dict(torch_version=torch.__version__, sizes=list(SIZES), steps=TRAIN_STEPS, batch_size=BATCH, batches=N_BATCHES,
                loss="cross_entropy (mean)", note="step i uses rows (i % batches) * batch_size ... + batch_size",
                x=tensor_json(x), y=tensor_json(y), init={k: tensor_json(v) for k, v in init.items()}, runs=runs)


def write(name, obj):
    path = os.path.join(OUT_DIR, name)
    with open(path, "w") as f:
        json.dump(obj, f, separators=(",", ":"))
        f.write("\n")
    return os.path.getsize(path)


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    total = 0
    for family, cases in FAMILIES.items():
        ids = [c["id"] for c in cases]
        assert len(ids) == len(set(ids)), f"duplicate case ids in {family}"
        size = write(f"ops_{family}.json", dict(torch_version=torch.__version__, family=family, cases=cases))
        total += size
        print(f"ops_{family}.json: {len(cases)} cases, {size / 1024:.0f} KiB")
    size = write("training.json", training_fixture())
    total += size
    print(f"training.json: {size / 1024:.0f} KiB; total {total / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
