#!/usr/bin/env python3
"""Write the seed corpus for fuzz-torch-ckpt: small torch.save-style zips and
bare pickles, valid and malicious.  The pickles come from CPython's own
pickler (protocol 2, as torch.save uses) with stand-in objects registered
under torch's module and class names, so they are independent of Dreamloom's
test writer.  Run from the repository root; the files are committed, this
script documents how they were made.  Crash inputs found later are added next
to them as crash-<sha1> files by hand."""
import collections
import copyreg
import io
import os
import pickle
import struct
import sys
import types
import zipfile

out = os.path.join(os.path.dirname(__file__), "corpus-torch-ckpt")
os.makedirs(out, exist_ok=True)


def module(name):
    m = types.ModuleType(name)
    sys.modules[name] = m
    return m


torch = module("torch")
torch_utils = module("torch._utils")
module("pytorch_lightning")
module("pytorch_lightning.callbacks")
lightning = module("pytorch_lightning.callbacks.model_checkpoint")
module("torch.nn")
module("torch.nn.modules")
container = module("torch.nn.modules.container")


def named(mod, obj, name):
    obj.__module__ = mod.__name__
    obj.__qualname__ = obj.__name__ = name
    setattr(mod, name, obj)
    return obj


def _rebuild_tensor_v2(*args):
    raise RuntimeError("never called")


def _rebuild_parameter(*args):
    raise RuntimeError("never called")


named(torch_utils, _rebuild_tensor_v2, "_rebuild_tensor_v2")
named(torch_utils, _rebuild_parameter, "_rebuild_parameter")
storage_classes = {}
for cls_name, fmt in (("FloatStorage", "f"), ("HalfStorage", "e"), ("LongStorage", "q")):
    storage_classes[cls_name] = (named(torch, type(cls_name, (), {}), cls_name), fmt)
ModelCheckpoint = named(lightning, type("ModelCheckpoint", (), {}), "ModelCheckpoint")
ParameterDict = named(container, type("ParameterDict", (), {}), "ParameterDict")


class Storage:
    def __init__(self, cls_name, key, values):
        self.cls, self.fmt = storage_classes[cls_name]
        self.key, self.values = key, values

    def raw(self):
        return struct.pack("<%d%s" % (len(self.values), self.fmt), *self.values)


class Tensor:
    def __init__(self, storage, offset, size, parameter=False):
        self.storage, self.offset, self.size, self.parameter = storage, offset, tuple(size), parameter

    def __reduce__(self):
        stride, acc = [], 1
        for d in reversed(self.size):
            stride.insert(0, acc)
            acc *= d
        t = (_rebuild_tensor_v2, (self.storage, self.offset, self.size, tuple(stride), False,
                                  collections.OrderedDict()))
        if self.parameter:
            return (_rebuild_parameter, (Rebuilt(t), True, collections.OrderedDict()))
        return t


class Rebuilt:
    def __init__(self, reduced):
        self.reduced = reduced

    def __reduce__(self):
        return self.reduced


class Pickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            return ("storage", obj.cls, obj.key, "cpu", len(obj.values))
        return None


def dumps(obj):
    f = io.BytesIO()
    Pickler(f, protocol=2).dump(obj)
    return f.getvalue()


def archive(obj, storages, deflate=False, prefix="archive"):
    f = io.BytesIO()
    with zipfile.ZipFile(f, "w") as z:
        z.writestr(prefix + "/data.pkl", dumps(obj))
        z.writestr(prefix + "/byteorder", "little")
        for s in storages:
            z.writestr(prefix + "/data/" + s.key, s.raw(),
                       compress_type=zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED)
        z.writestr(prefix + "/version", "3\n")
    return f.getvalue()


w = Storage("FloatStorage", "0", [1.5, -2.0, 0.25, 3.0, 0.0, 7.0])
h = Storage("HalfStorage", "1", [1.0, -0.5, 2.0])
ids = Storage("LongStorage", "2", [49406, 320, 49407])
state = collections.OrderedDict()
state["model.diffusion_model.out.2.weight"] = Tensor(w, 0, (2, 3))
state["first_stage_model.decoder.conv_in.bias"] = Tensor(h, 0, (3,))
state["cond_stage_model.transformer.text_model.embeddings.position_ids"] = Tensor(ids, 0, (1, 3))
views = collections.OrderedDict([("a", Tensor(w, 0, (2, 2))), ("b", Tensor(w, 4, (2,)))])
params = collections.OrderedDict([("w", Tensor(w, 0, (6,), parameter=True))])
callback = ModelCheckpoint()
callback.__dict__.update({"monitor": None, "best_model_score": 0.5})
lightning_ckpt = {"epoch": 6, "global_step": 470000, "callbacks": {ModelCheckpoint: {"monitor": None}},
                  "state_dict": state, "checkpoint": callback}

# Textual Inversion embeddings: A1111's Embedding.save dict, and the original
# TI repo's (string_to_token values 0-dim tensors, string_to_param an
# nn.ParameterDict pickled as NEWOBJ + BUILD of its attributes)
emb = Storage("FloatStorage", "0", [0.5, -1.0, 2.0, 0.125, -4.0, 8.0])
star = Storage("LongStorage", "1", [265])
ti_a1111 = {"string_to_token": {"*": 265}, "string_to_param": {"*": Tensor(emb, 0, (2, 3))}, "name": "cat",
            "step": 500, "sd_checkpoint": "0123456789", "sd_checkpoint_name": "v1-5-pruned"}
param_dict = ParameterDict()
param_dict.__dict__.update({"training": True,
                            "_parameters": collections.OrderedDict([("*", Tensor(emb, 0, (2, 3), parameter=True))]),
                            "_buffers": collections.OrderedDict(), "_non_persistent_buffers_set": set(),
                            "_is_full_backward_hook": None, "_modules": collections.OrderedDict()})
ti_original = {"string_to_token": {"*": Tensor(star, 0, ())}, "string_to_param": param_dict}


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


seeds = {
    "valid-state-dict.pt": archive(state, [w, h, ids]),
    "valid-deflated.pt": archive(state, [w, h, ids], deflate=True),
    "valid-lightning.ckpt": archive(lightning_ckpt, [w, h, ids], prefix="last"),
    "valid-views.pt": archive(views, [w]),
    "valid-parameters.pt": archive(params, [w]),
    "valid-ti-a1111.pt": archive(ti_a1111, [emb]),
    "valid-ti-parameterdict.pt": archive(ti_original, [emb, star], prefix="embeddings"),
    "pickle-state-dict": dumps(state),
    "pickle-lightning": dumps(lightning_ckpt),
    "pickle-protocol4": pickle.dumps({"a": [1, 2.5, None, True, "x" * 3], "b": (b"raw", {1, 2})}, protocol=4),
    "bad-os-system.pt": archive({"x": Evil()}, []),
    "bad-pickle-os-system": dumps(Evil()),
    "bad-legacy.pt": b"\x80\x02\x8a\x0alZ\xfc\x9cF\xf9 j\xa8P\x19." + dumps(state)[2:],
}
seeds["bad-truncated.pt"] = seeds["valid-state-dict.pt"][: len(seeds["valid-state-dict.pt"]) // 2]
crc = bytearray(seeds["valid-state-dict.pt"])
crc[crc.find(struct.pack("<f", 0.25))] ^= 0x40
seeds["bad-crc.pt"] = bytes(crc)

for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
print("wrote %d seeds to %s" % (len(seeds), out))
