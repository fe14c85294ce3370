"""PyTorch side of bench/compare: the same models, shapes, optimizers and synthetic data as
`backprop bench model` (src/Backprop.Cli/Bench/BenchModels.cs). Prints one JSON object.

usage: python3 torch_models.py MODEL [--threads T] [--steps S] [--warmup-seconds W]
       python3 torch_models.py cnn [--layout channels-last|nchw] [--threads T] ...
       python3 torch_models.py gemm --size N [--threads T] [--repeats R]
"""
import argparse, json, statistics, time
import torch

POOL = 64


def mlp(sizes, act, batch, make_opt):
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(torch.nn.Linear(sizes[i], sizes[i + 1]))
        if i + 2 < len(sizes):
            layers.append(act())
    model = torch.nn.Sequential(*layers)
    opt = make_opt(model.parameters())
    xs = [torch.rand(batch, sizes[0]) for _ in range(POOL)]
    ys = [torch.randint(0, sizes[-1], (batch,)) for _ in range(POOL)]
    loss_fn = torch.nn.CrossEntropyLoss()

    def step(i):
        loss = loss_fn(model(xs[i % POOL]), ys[i % POOL])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step, batch


def window_lm():
    vocab, context, embed, hidden, batch = 65, 8, 32, 256, 128
    emb = torch.nn.Embedding(vocab, embed)
    net = torch.nn.Sequential(torch.nn.Linear(context * embed, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, vocab))
    opt = torch.optim.Adam(list(emb.parameters()) + list(net.parameters()), lr=1e-3)
    xs = [torch.randint(0, vocab, (batch, context)) for _ in range(POOL)]
    ys = [torch.randint(0, vocab, (batch,)) for _ in range(POOL)]
    loss_fn = torch.nn.CrossEntropyLoss()

    def step(i):
        h = emb(xs[i % POOL]).reshape(batch, context * embed)
        loss = loss_fn(net(h), ys[i % POOL])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step, batch


class Block(torch.nn.Module):
    """nanoGPT's block with the attention written out (PyTorch 1.13 has no scaled_dot_product_attention)."""

    def __init__(self, c, heads, t):
        super().__init__()
        self.heads = heads
        self.ln_1, self.ln_2 = torch.nn.LayerNorm(c), torch.nn.LayerNorm(c)
        self.c_attn, self.c_proj = torch.nn.Linear(c, 3 * c), torch.nn.Linear(c, c)
        self.c_fc, self.mlp_proj = torch.nn.Linear(c, 4 * c), torch.nn.Linear(4 * c, c)
        self.register_buffer("mask", torch.tril(torch.ones(t, t)).view(1, 1, t, t))

    def forward(self, x):
        b, t, c = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(c, dim=2)
        q, k, v = [z.view(b, t, self.heads, c // self.heads).transpose(1, 2) for z in (q, k, v)]
        att = (q @ k.transpose(-2, -1)) * (1.0 / (k.size(-1) ** 0.5))
        att = att.masked_fill(self.mask[:, :, :t, :t] == 0, float("-inf")).softmax(-1)
        x = x + self.c_proj((att @ v).transpose(1, 2).contiguous().view(b, t, c))
        return x + self.mlp_proj(torch.nn.functional.gelu(self.c_fc(self.ln_2(x))))


def gpt():
    vocab, context, c, layers, heads, batch = 65, 64, 128, 4, 4, 32
    wte, wpe = torch.nn.Embedding(vocab, c), torch.nn.Embedding(context, c)
    blocks = torch.nn.Sequential(*[Block(c, heads, context) for _ in range(layers)])
    ln_f = torch.nn.LayerNorm(c)
    params = list(wte.parameters()) + list(wpe.parameters()) + list(blocks.parameters()) + list(ln_f.parameters())
    opt = torch.optim.AdamW(params, lr=1e-3)
    pos = torch.arange(context)
    xs = [torch.randint(0, vocab, (batch, context)) for _ in range(POOL)]
    ys = [torch.randint(0, vocab, (batch * context,)) for _ in range(POOL)]
    loss_fn = torch.nn.CrossEntropyLoss()

    def step(i):
        x = blocks(wte(xs[i % POOL]) + wpe(pos))
        logits = torch.nn.functional.linear(ln_f(x), wte.weight)  # tied to the token embedding
        loss = loss_fn(logits.view(-1, vocab), ys[i % POOL])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step, batch * context


def lstm_lm():
    """Character LSTM LM as `backprop bench model lstm`: 65 chars -> embedding 64 -> LSTM 256 -> 65,
    context 64, batch 32, Adam 2e-3, the state carried between steps and detached (truncated BPTT)."""
    vocab, embed, hidden, batch, context = 65, 64, 256, 32, 64
    emb = torch.nn.Embedding(vocab, embed)
    lstm = torch.nn.LSTM(embed, hidden, batch_first=True)
    head = torch.nn.Linear(hidden, vocab)
    opt = torch.optim.Adam(list(emb.parameters()) + list(lstm.parameters()) + list(head.parameters()), lr=2e-3)
    xs = [torch.randint(0, vocab, (batch, context)) for _ in range(POOL)]
    ys = [torch.randint(0, vocab, (batch * context,)) for _ in range(POOL)]
    loss_fn = torch.nn.CrossEntropyLoss()
    state = [None]

    def step(i):
        y, (h, c) = lstm(emb(xs[i % POOL]), state[0])
        loss = loss_fn(head(y).reshape(batch * context, vocab), ys[i % POOL])
        opt.zero_grad()
        loss.backward()
        state[0] = (h.detach(), c.detach())
        opt.step()
    return step, batch * context


def cnn(channels_last=True):
    """The `--model cnn` preset as `backprop bench model cnn`: 1x28x28 -> conv 32 3x3 pad 1 -> batch norm -> ReLU ->
    max pool 2 -> conv 64 3x3 pad 1 -> batch norm -> ReLU -> max pool 2 -> dropout 0.25 -> linear 3136 -> 10
    (50,378 parameters), Adam lr 2e-3, batch 128, train mode. channels_last (the default: PyTorch's fastest
    configuration on this CPU, its oneDNN convolutions in NHWC) puts the model and the inputs in channels-last
    memory format; --layout nchw keeps the plain NCHW layout."""
    batch = 128
    nn = torch.nn
    model = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Dropout(0.25), nn.Flatten(), nn.Linear(64 * 7 * 7, 10))
    assert sum(p.numel() for p in model.parameters()) == 50378
    model.train()
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    xs = [torch.rand(batch, 1, 28, 28).to(memory_format=fmt) for _ in range(POOL)]
    ys = [torch.randint(0, 10, (batch,)) for _ in range(POOL)]
    loss_fn = nn.CrossEntropyLoss()

    def step(i):
        loss = loss_fn(model(xs[i % POOL]), ys[i % POOL])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step, batch


MODELS = {
    "mlp-small": lambda: mlp([784, 16, 16, 10], torch.nn.Sigmoid, 10, lambda p: torch.optim.SGD(p, lr=0.1)),
    "mlp-256": lambda: mlp([784, 256, 128, 10], torch.nn.ReLU, 128, lambda p: torch.optim.Adam(p, lr=1e-3)),
    "window-lm": window_lm,
    "gpt": gpt,
    "lstm": lstm_lm,
    "cnn": cnn,
}


def run_model(name, steps, warmup, layout="channels-last"):
    step, per_step = cnn(layout == "channels-last") if name == "cnn" else MODELS[name]()
    i = 0
    t = time.perf_counter()
    while time.perf_counter() - t < warmup:
        step(i); i += 1
    if steps == 0:
        probe, t = 0, time.perf_counter()
        while time.perf_counter() - t < 0.3:
            step(i); i += 1; probe += 1
        steps = max(10, probe * 10)
    t = time.perf_counter()
    for _ in range(steps):
        step(i); i += 1
    dt = time.perf_counter() - t
    return {"benchmark": "model", "model": name, "steps": steps, "seconds": dt, **({"layout": layout} if name == "cnn" else {}),
            "microseconds_per_step": dt / steps * 1e6, "samples_per_second": per_step * steps / dt}


def run_gemm(n, repeats):
    a, b = torch.rand(n, n), torch.rand(n, n)
    t, per = time.perf_counter(), 0
    while time.perf_counter() - t < 1:
        a @ b; per += 1
    per = max(1, per // 5)
    rates = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(per):
            a @ b
        rates.append(2.0 * n ** 3 * per / (time.perf_counter() - t) / 1e9)
    return {"benchmark": "gemm", "size": n, "gflops": statistics.median(rates), "gflops_min": min(rates), "gflops_max": max(rates)}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("what")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=0)
    p.add_argument("--warmup-seconds", type=float, default=2.0)
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--repeats", type=int, default=9)
    p.add_argument("--layout", choices=["channels-last", "nchw"], default="channels-last", help="cnn only: memory format")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    r = run_gemm(a.size, a.repeats) if a.what == "gemm" else run_model(a.what, a.steps, a.warmup_seconds, a.layout)
    r["threads"] = torch.get_num_threads()
    r["torch"] = torch.__version__
    print(json.dumps(r))


if __name__ == "__main__":
    main()
