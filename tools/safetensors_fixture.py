#!/usr/bin/env python3
"""A safetensors file laid out the way Hugging Face's reference writer lays it out, for Backprop's
interoperability test. Writes tests/Backprop.Tests/fixtures/reference.safetensors.

The `safetensors` Python package is not installable here (no PyPI), so this script follows the
format specification and the reference serializer (safetensors/src/tensor.rs, `prepare` and
`serialize`) by hand:
  - tensors are ordered by dtype alignment, largest first, then by name;
  - the header is compact JSON with "__metadata__" first, then each tensor as
    {"dtype", "shape", "data_offsets"} in that order;
  - the header is padded with spaces to a multiple of 8 bytes, and its padded length is the
    leading little-endian u64;
  - the data follows, little-endian, each tensor at its data_offsets.
Values come from torch with a fixed seed, and the expected values are printed as JSON to stdout
(the test pins a few of them):

    /usr/bin/python3 tools/safetensors_fixture.py      (Debian: apt-get install -y python3-torch)
"""
import json
import os
import struct

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "Backprop.Tests", "fixtures", "reference.safetensors")

gen = torch.Generator().manual_seed(7)
tensors = {
    "linear.weight": torch.randn(3, 4, generator=gen, dtype=torch.float32),
    "linear.bias": torch.randn(3, generator=gen, dtype=torch.float32),
    "scale": torch.tensor(2.5, dtype=torch.float64),                  # 0-d tensor: shape []
    "counts": torch.tensor([1, -2, 3_000_000_000], dtype=torch.int64),
    "empty": torch.zeros(0, 5, dtype=torch.float32),                  # no bytes: data_offsets [x, x]
}
metadata = {"format": "pt", "note": "written by tools/safetensors_fixture.py"}

ALIGN = {torch.float64: 8, torch.int64: 8, torch.float32: 4}
NAME = {torch.float64: "F64", torch.int64: "I64", torch.float32: "F32"}

order = sorted(tensors, key=lambda k: (-ALIGN[tensors[k].dtype], k))
header = {"__metadata__": metadata}
offset = 0
blobs = []
for k in order:
    t = tensors[k].contiguous()
    data = t.numpy().astype(t.numpy().dtype.newbyteorder("<")).tobytes()
    header[k] = {"dtype": NAME[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
    offset += len(data)
    blobs.append(data)
text = json.dumps(header, separators=(",", ":")).encode("utf-8")
text += b" " * ((8 - len(text) % 8) % 8)
with open(OUT, "wb") as f:
    f.write(struct.pack("<Q", len(text)))
    f.write(text)
    for b in blobs:
        f.write(b)

print(json.dumps({k: tensors[k].flatten().tolist() for k in tensors}))
