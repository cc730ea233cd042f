"""A minimal, pure-Python reader/writer of the safetensors format, for the
PyTorch reference harness only.

Debian 12 packages no `safetensors`, and diffusers' model modules `import
safetensors` at import time.  When the real package is importable this module
is not used at all; otherwise `install()` registers this file as the modules
`safetensors` and `safetensors.torch` (load_file, save_file, safe_open) so
that diffusers imports.  The harness itself reads weights through
`load_file`, never through diffusers' from_pretrained, so nothing depends on
diffusers finding a "real" safetensors.

Format: 8-byte little-endian header length, a JSON header
{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}},
then the raw little-endian tensor bytes.
"""

import json
import struct
import sys
import types

import torch

_DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}
_NAMES = {v: k for k, v in _DTYPES.items()}


def _read(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n).decode("utf-8"))
        data = f.read()
    return header, data


def load_file(path, device="cpu"):
    header, data = _read(path)
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        dtype = _DTYPES[info["dtype"]]
        buf = bytearray(data[b:e])
        if len(buf):
            t = torch.frombuffer(buf, dtype=dtype).clone()
        else:
            t = torch.empty(0, dtype=dtype)
        out[name] = t.reshape(info["shape"]).to(device)
    return out


def metadata(path):
    header, _ = _read(path)
    return header.get("__metadata__", {})


def save_file(tensors, path, metadata=None):
    header = {}
    blobs = []
    off = 0
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu").contiguous()
        raw = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": _NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for raw in blobs:
            f.write(raw)


class safe_open:  # noqa: N801 (the real API's name)
    def __init__(self, path, framework="pt", device="cpu"):
        self._t = load_file(path, device)
        self._m = metadata(path)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def keys(self):
        return list(self._t)

    def get_tensor(self, name):
        return self._t[name]

    def metadata(self):
        return self._m


def install():
    """Make `import safetensors` / `safetensors.torch` work when the real
    package is absent.  Returns True when the stand-in was installed."""
    try:
        import safetensors.torch  # noqa: F401

        return False
    except ImportError:
        pass
    import importlib.machinery

    pkg = types.ModuleType("safetensors")
    pkg.__spec__ = importlib.machinery.ModuleSpec("safetensors", None, is_package=True)
    pkg.__path__ = []
    pkg.safe_open = safe_open
    pkg.SafetensorError = OSError
    sub = types.ModuleType("safetensors.torch")
    sub.__spec__ = importlib.machinery.ModuleSpec("safetensors.torch", None)
    sub.load_file = load_file
    sub.save_file = save_file
    sub.load = None
    pkg.torch = sub
    sys.modules["safetensors"] = pkg
    sys.modules["safetensors.torch"] = sub
    return True
