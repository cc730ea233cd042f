#!/usr/bin/env python3
"""Write the seed corpus for fuzz-safetensors (small valid and broken files).
Run from the repository root; the files are committed, this script documents
how they were made.  Crash inputs found later are added next to them as
crash-<sha1> files by hand."""
import json, os, struct

out = os.path.join(os.path.dirname(__file__), "corpus-safetensors")
os.makedirs(out, exist_ok=True)

def st(header, data=b"", n=None, pad=True):
    h = header if isinstance(header, bytes) else header.encode()
    if pad:
        h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h) if n is None else n) + h + data

def t(dtype, shape, a, b):
    return {"dtype": dtype, "shape": shape, "data_offsets": [a, b]}

def dumps(d):
    return json.dumps(d, separators=(",", ":"))

seeds = {
    "valid-one-f32": st(dumps({"__metadata__": {"format": "pt"}, "w": t("F32", [2], 0, 8)}),
                        struct.pack("<2f", 1.0, -2.0)),
    "valid-dtypes": st(dumps({"ids": t("I64", [1, 2], 0, 16), "w": t("F32", [1], 16, 20),
                              "h": t("F16", [2], 20, 24), "b": t("BF16", [1], 24, 26),
                              "u": t("U8", [2], 26, 28), "e4": t("F8_E4M3", [1], 28, 29),
                              "f4": t("F4", [2], 29, 30)}),
                       struct.pack("<2q", 49406, 49407) + struct.pack("<f", 0.5) + b"\x00\x3c\x00\xc0"
                       + b"\x80\x3f" + b"\x00\xff" + b"\x38" + b"\x12"),
    "valid-empty": st("{}"),
    "valid-metadata-only": st(dumps({"__metadata__": {"ss_network_dim": "4", "json": "{\"a\": 1}"}})),
    "valid-scalar-and-empty": st(dumps({"alpha": t("F32", [], 0, 4), "e": t("F16", [0, 3], 4, 4)}),
                                 struct.pack("<f", 4.0)),
    "valid-ldm-names": st(dumps({
        "model.diffusion_model.input_blocks.0.0.weight": t("F16", [2, 1, 1, 1], 0, 4),
        "first_stage_model.decoder.mid.attn_1.q.weight": t("F16", [1, 1, 1, 1], 4, 6),
        "cond_stage_model.transformer.text_model.embeddings.position_ids": t("I64", [1, 1], 8, 16),
        "x": t("F16", [1], 6, 8)}), b"\x00" * 16),
    "valid-unaligned": st(dumps({"a": t("F32", [1], 0, 4)}) + " ", b"\x00\x00\x80\x3f", pad=False),
    "bad-overlap": st(dumps({"a": t("F32", [2], 0, 8), "b": t("F32", [1], 4, 8)}), b"\x00" * 8),
    "bad-gap": st(dumps({"a": t("F32", [1], 4, 8)}), b"\x00" * 8),
    "bad-size": st(dumps({"a": t("F32", [3], 0, 8)}), b"\x00" * 8),
    "bad-truncated": st(dumps({"a": t("F32", [4], 0, 16)}), b"\x00" * 4),
    "bad-header-length": st("{}", n=1 << 40),
    "bad-dtype": st(dumps({"a": t("Q8", [1], 0, 1)}), b"\x00"),
    "bad-metadata": st(dumps({"__metadata__": {"a": 1}})),
    "bad-duplicate": st('{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},'
                        '"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}', b"\x00\x00"),
    "bad-deep": st('{"__metadata__":' + "[" * 40 + "]" * 40 + "}"),
    "bad-big-int": st('{"a":{"dtype":"U8","shape":[18446744073709551617],"data_offsets":[0,1]}}', b"\x00"),
}
for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
print(f"{len(seeds)} files, {sum(map(len, seeds.values()))} bytes in {out}")
