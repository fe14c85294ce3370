#!/usr/bin/env python3
"""Compares the tensors of two safetensors checkpoints (no third-party packages).

  compare_checkpoints.py A B --exact            every tensor bit-identical
  compare_checkpoints.py A B --rtol 1e-5        max|a-b| <= rtol * max|b| for each model tensor
  [--prefix model.]                             only tensors whose name starts with this

Prints one line per failing tensor and exits 1 when any fails (CI uses it for docs/distributed.md).
"""
import json, struct, sys, array

def load(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    body = raw[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        code = {"F32": "f", "F64": "d", "I64": "q"}[info["dtype"]]
        out[name] = (info["dtype"], body[a:b], array.array(code, body[a:b]))
    return out

def main(argv):
    a, b = argv[1], argv[2]
    exact = "--exact" in argv
    rtol = float(argv[argv.index("--rtol") + 1]) if "--rtol" in argv else 1e-5
    prefix = argv[argv.index("--prefix") + 1] if "--prefix" in argv else ""
    ta, tb = load(a), load(b)
    names = sorted(n for n in ta if n.startswith(prefix))
    if not names or set(names) != set(n for n in tb if n.startswith(prefix)):
        print(f"the checkpoints hold different tensors: {names} vs {sorted(n for n in tb if n.startswith(prefix))}")
        return 1
    bad = 0
    worst = 0.0
    for n in names:
        da, ra, va = ta[n]
        db, rb, vb = tb[n]
        if exact:
            if ra != rb:
                print(f"{n}: not bit-identical")
                bad += 1
            continue
        scale = max((abs(x) for x in vb), default=0.0) or 1.0
        diff = max((abs(x - y) for x, y in zip(va, vb)), default=0.0) / scale
        worst = max(worst, diff)
        if diff > rtol or len(va) != len(vb):
            print(f"{n}: relative difference {diff:.3g} > {rtol:g}")
            bad += 1
    what = "bit-identical" if exact else f"within {rtol:g} relative (worst {worst:.3g})"
    print(f"{len(names)} tensor(s) compared: " + ("all " + what if bad == 0 else f"{bad} differ"))
    return 1 if bad else 0

if __name__ == "__main__":
    sys.exit(main(sys.argv))
