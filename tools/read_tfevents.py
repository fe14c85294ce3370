#!/usr/bin/env python3
"""Reads TensorBoard event files written by `backprop train --logdir DIR`, independently of the C# code.

Checks the TFRecord framing (u64 little-endian length, masked CRC-32C of the length, data, masked
CRC-32C of the data; CRC-32C and the mask are computed here from their definitions), decodes the
Event / Summary protocol-buffer messages by hand (no protobuf package needed), and prints the tags.

  python3 tools/read_tfevents.py LOGDIR [--json RESULT.json]

With --json (the last line of `backprop train --json`), the scalars accuracy/test and loss/train must
equal the run's per-epoch history (to float32 precision). Exits 1 on any mismatch or framing error.
"""
import glob
import json
import os
import struct
import sys


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def masked(crc: int) -> int:
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def records(path):
    data = open(path, "rb").read()
    pos = 0
    n = 0
    while pos < len(data):
        if len(data) - pos < 12:
            raise ValueError(f"{path}: record {n} at byte {pos}: truncated header")
        (length,) = struct.unpack_from("<Q", data, pos)
        (len_crc,) = struct.unpack_from("<I", data, pos + 8)
        if len_crc != masked(crc32c(data[pos:pos + 8])):
            raise ValueError(f"{path}: record {n} at byte {pos}: bad length CRC")
        body = data[pos + 12:pos + 12 + length]
        if len(body) != length or len(data) < pos + 16 + length:
            raise ValueError(f"{path}: record {n} at byte {pos}: truncated data")
        (data_crc,) = struct.unpack_from("<I", data, pos + 12 + length)
        if data_crc != masked(crc32c(body)):
            raise ValueError(f"{path}: record {n} at byte {pos}: bad data CRC")
        yield body
        pos += 16 + length
        n += 1


def varint(buf, pos):
    result = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def fields(buf):
    """(field number, wire type, value) of a message: int for varints, bytes for the rest."""
    out = []
    pos = 0
    while pos < len(buf):
        key, pos = varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        elif wire == 2:
            n, pos = varint(buf, pos)
            value, pos = buf[pos:pos + n], pos + n
        else:
            raise ValueError(f"unsupported wire type {wire}")
        out.append((field, wire, value))
    return out


def first(fs, number):
    return next((v for f, _, v in fs if f == number), None)


def read(path):
    """Per event: (step, wall time, file_version or None, [(tag, kind, value)])."""
    events = []
    for body in records(path):
        ev = fields(body)
        step = first(ev, 2) or 0
        wall = struct.unpack("<d", first(ev, 1))[0]
        version = first(ev, 3)
        values = []
        summary = first(ev, 5)
        if summary is not None:
            for f, _, v in fields(summary):
                if f != 1:
                    continue
                vf = fields(v)
                tag = first(vf, 1).decode()
                if first(vf, 2) is not None:
                    values.append((tag, "scalar", struct.unpack("<f", first(vf, 2))[0]))
                elif first(vf, 5) is not None:
                    h = fields(first(vf, 5))
                    d = {n: struct.unpack("<d", first(h, n))[0] for n in (1, 2, 3, 4, 5)}
                    counts = first(h, 7)
                    bucket = struct.unpack(f"<{len(counts) // 8}d", counts)
                    if abs(sum(bucket) - d[3]) > 0.5:
                        raise ValueError(f"{path}: histogram {tag}: buckets hold {sum(bucket)}, num says {d[3]}")
                    values.append((tag, "histogram", d[3]))
                elif first(vf, 4) is not None:
                    img = fields(first(vf, 4))
                    png = first(img, 4)
                    if not png.startswith(b"\x89PNG\r\n\x1a\n"):
                        raise ValueError(f"{path}: image {tag} is not a PNG")
                    values.append((tag, "image", (first(img, 2), first(img, 1))))
                elif first(vf, 8) is not None:
                    t = fields(first(vf, 8))
                    values.append((tag, "text", first(t, 8).decode()))
        events.append((step, wall, version.decode() if version else None, values))
    return events


def main(argv):
    if len(argv) < 2:
        print(__doc__)
        return 2
    logdir = argv[1]
    expected = None
    if "--json" in argv:
        expected = json.loads(open(argv[argv.index("--json") + 1]).read().strip().splitlines()[-1])
    files = sorted(glob.glob(os.path.join(logdir, "events.out.tfevents.*")))
    if not files:
        print(f"no events.out.tfevents.* file in {logdir}")
        return 1
    ok = True
    for path in files:
        events = read(path)
        if events[0][2] != "brain.Event:2":
            print(f"{path}: the first event is not file_version brain.Event:2")
            ok = False
        scalars = {}
        kinds = {}
        for step, _, _, values in events:
            for tag, kind, value in values:
                kinds.setdefault(kind, set()).add(tag)
                if kind == "scalar":
                    scalars.setdefault(tag, []).append((step, value))
        print(f"{path}: {len(events)} events; " + "; ".join(f"{k}: {len(v)} tags" for k, v in sorted(kinds.items())))
        for tag in sorted(scalars):
            if tag.startswith(("loss/", "accuracy/")):
                print(f"  {tag}: " + ", ".join(f"{v:.4f}@{s}" for s, v in scalars[tag]))
        if expected is not None:
            history = expected["history"]
            for tag, key in (("accuracy/test", "test_accuracy"), ("loss/train", "train_loss"), ("loss/test", "test_loss")):
                got = [v for _, v in scalars.get(tag, [])]
                want = [h[key] for h in history]
                if len(got) != len(want) or any(abs(g - w) > 1e-6 * max(1.0, abs(w)) for g, w in zip(got, want)):
                    print(f"  MISMATCH {tag}: events {got} vs --json history {want}")
                    ok = False
                else:
                    print(f"  {tag} matches the run's --json history ({len(got)} epochs)")
    print("events OK" if ok else "events FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
