#!/usr/bin/env python3
"""Safetensors files laid out the way Hugging Face's reference writer lays them out, for Backprop's
interoperability tests. Writes, under tests/Backprop.Tests/fixtures/:

  reference.safetensors   assorted tensors (F32, F64, I64, a 0-d and an empty one) with metadata;
                          the expected values are printed as JSON to stdout (the test pins a few);
  torch_mlp.safetensors   the state dict of a PyTorch MLP, nn.Sequential(Linear(6, 16), ReLU(),
                          Linear(16, 12), Tanh(), Linear(12, 3)), as safetensors.save_file(
                          model.state_dict(), ...) would write it;
  torch_mlp.json          a fixed input [5, 6] and PyTorch's output [5, 3] for it (float32), which
                          the Backprop model must reproduce after model.Load(...) (ModelSaveLoadTests).

The `safetensors` Python package is not installable here (no PyPI), so this script follows the
format specification and the reference serializer (safetensors/src/tensor.rs, `prepare` and
`serialize`) by hand:
  - tensors are ordered by dtype alignment, largest first, then by name;
  - the header is compact JSON with "__metadata__" first, then each tensor as
    {"dtype", "shape", "data_offsets"} in that order;
  - the header is padded with spaces to a multiple of 8 bytes, and its padded length is the
    leading little-endian u64;
  - the data follows, little-endian, each tensor at its data_offsets.
Values come from torch with fixed seeds:

    /usr/bin/python3 tools/safetensors_fixture.py      (Debian: apt-get install -y python3-torch)
"""
import json
import os
import struct

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "tests", "Backprop.Tests", "fixtures")

ALIGN = {torch.float64: 8, torch.int64: 8, torch.float32: 4}
NAME = {torch.float64: "F64", torch.int64: "I64", torch.float32: "F32"}


def save_file(tensors, path, metadata):
    """safetensors.torch.save_file, written out by hand."""
    order = sorted(tensors, key=lambda k: (-ALIGN[tensors[k].dtype], k))
    header = {"__metadata__": metadata}
    offset = 0
    blobs = []
    for k in order:
        t = tensors[k].detach().contiguous()
        data = t.numpy().astype(t.numpy().dtype.newbyteorder("<")).tobytes()
        header[k] = {"dtype": NAME[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def reference():
    gen = torch.Generator().manual_seed(7)
    tensors = {
        "linear.weight": torch.randn(3, 4, generator=gen, dtype=torch.float32),
        "linear.bias": torch.randn(3, generator=gen, dtype=torch.float32),
        "scale": torch.tensor(2.5, dtype=torch.float64),                  # 0-d tensor: shape []
        "counts": torch.tensor([1, -2, 3_000_000_000], dtype=torch.int64),
        "empty": torch.zeros(0, 5, dtype=torch.float32),                  # no bytes: data_offsets [x, x]
    }
    save_file(tensors, os.path.join(FIXTURES, "reference.safetensors"),
              {"format": "pt", "note": "written by tools/safetensors_fixture.py"})
    print(json.dumps({k: tensors[k].flatten().tolist() for k in tensors}))


def mlp():
    torch.manual_seed(0)  # PyTorch's default initialization, seeded
    model = torch.nn.Sequential(
        torch.nn.Linear(6, 16), torch.nn.ReLU(),
        torch.nn.Linear(16, 12), torch.nn.Tanh(),
        torch.nn.Linear(12, 3))
    x = torch.randn(5, 6, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = model(x)
    save_file(model.state_dict(), os.path.join(FIXTURES, "torch_mlp.safetensors"), {"format": "pt"})
    doc = {
        "about": "tools/safetensors_fixture.py: PyTorch %s, nn.Sequential(Linear(6, 16), ReLU(), Linear(16, 12), Tanh(), "
                 "Linear(12, 3)) after torch.manual_seed(0); its state dict is torch_mlp.safetensors" % torch.__version__,
        "input_shape": list(x.shape),
        "input": x.flatten().tolist(),
        "output_shape": list(y.shape),
        "output": y.flatten().tolist(),
    }
    with open(os.path.join(FIXTURES, "torch_mlp.json"), "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    reference()
    mlp()
