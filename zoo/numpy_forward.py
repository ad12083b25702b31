#!/usr/bin/python3
"""A NumPy-only forward pass of a pcmsim model file (docs/formats.md, format_version 1).

Independent of PyTorch and of the C++ loader: it checks that what a file says is what was
trained. Computes in float32 (convolutions as im2col GEMMs). Usage:

  /usr/bin/python3 zoo/numpy_forward.py zoo/resnet.h5     # accuracy + agreement with
                                                                    # the file's reference group
"""
import math
import os
import sys

import h5py
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

ACTIVATIONS = {
    "none": lambda x: x,
    "identity": lambda x: x,
    "dropout": lambda x: x,
    "relu": lambda x: np.maximum(x, np.float32(0)),
    "relu6": lambda x: np.clip(x, np.float32(0), np.float32(6)),
    "sigmoid": lambda x: (1 / (1 + np.exp(-x))).astype(np.float32),
    "tanh": np.tanh,
    "silu": lambda x: (x / (1 + np.exp(-x))).astype(np.float32),
    "hardswish": lambda x: (x * np.clip(x + 3, 0, 6) / 6).astype(np.float32),
    "hardsigmoid": lambda x: (np.clip(x + 3, 0, 6) / 6).astype(np.float32),
    "gelu": lambda x: (0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))).astype(np.float32),
}


def _int2(v, default):
    if v is None:
        return (default, default)
    v = np.atleast_1d(np.asarray(v)).astype(int)
    return (int(v[0]), int(v[0])) if v.size == 1 else (int(v[0]), int(v[1]))


def _str(v):
    return v.decode() if isinstance(v, bytes) else str(v)


def load(path):
    """Reads the file into a list of layer dicts (name, kind, attrs, arrays, inputs)."""
    with h5py.File(path, "r") as f:
        if _str(f.attrs.get("format", "")) != "pcmsim-model":
            raise ValueError(f"{path}: not a pcmsim-model file")
        if int(f.attrs["format_version"]) > 1:
            raise ValueError(f"{path}: format_version {int(f.attrs['format_version'])} is newer than 1")
        net = {"input_shape": tuple(int(v) for v in f.attrs["input_shape"]),
               "mean": np.asarray(f.attrs["input_mean"], dtype=np.float32),
               "std": np.asarray(f.attrs["input_std"], dtype=np.float32), "layers": []}
        keys = sorted(f["layers"].keys(), key=lambda k: int(k.split("_", 1)[0]))
        names = {}
        for i, key in enumerate(keys):
            idx, name = key.split("_", 1)
            if int(idx) != i:
                raise ValueError(f"{path}: layer index gap at {key}")
            g = f["layers"][key]
            layer = {"name": name, "kind": _str(g.attrs["kind"]),
                     "attrs": {k: g.attrs[k] for k in g.attrs},
                     "arrays": {k: g[k][...].astype(np.float32) for k in g.keys()}}
            if "inputs" in g.attrs:
                srcs = []
                for s in _str(g.attrs["inputs"]).split(","):
                    s = s.strip()
                    srcs.append(-1 if s == "input" else int(s) if s.isdigit() else names[s])
            else:
                srcs = [i - 1]
            layer["inputs"] = srcs
            names[name] = i
            net["layers"].append(layer)
    return net


def conv2d(x, w, b, stride, padding, dilation, groups):
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding[0], padding[0]), (padding[1], padding[1])))
    eh, ew = dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1
    win = sliding_window_view(xp, (eh, ew), axis=(2, 3))
    win = win[:, :, ::stride[0], ::stride[1], ::dilation[0], ::dilation[1]]  # N,C,Ho,Wo,kh,kw
    ho, wo = win.shape[2], win.shape[3]
    og = o // groups
    outs = []
    for g in range(groups):
        cols = win[:, g * cg:(g + 1) * cg].transpose(0, 2, 3, 1, 4, 5).reshape(n * ho * wo, cg * kh * kw)
        wm = w[g * og:(g + 1) * og].reshape(og, cg * kh * kw).T
        outs.append((cols @ wm).reshape(n, ho, wo, og))
    y = np.concatenate(outs, axis=3).transpose(0, 3, 1, 2)
    if b is not None:
        y = y + b[None, :, None, None]
    return np.ascontiguousarray(y, dtype=np.float32)


def _pool_out(size, k, s, p, d, ceil):
    eff = d * (k - 1) + 1
    if ceil:
        out = -(-(size + 2 * p - eff) // s) + 1
        if (out - 1) * s >= size + p:   # last window must start inside the input or left padding
            out -= 1
    else:
        out = (size + 2 * p - eff) // s + 1
    return out


def pool2d(x, attrs, mode):
    k = _int2(attrs.get("kernel_size"), 1)
    s = _int2(attrs.get("stride"), None) if "stride" in attrs else k
    p = _int2(attrs.get("padding"), 0)
    d = _int2(attrs.get("dilation"), 1) if mode == "max" else (1, 1)
    ceil = int(attrs.get("ceil_mode", 0))
    n, c, h, w = x.shape
    ho, wo = _pool_out(h, k[0], s[0], p[0], d[0], ceil), _pool_out(w, k[1], s[1], p[1], d[1], ceil)
    eh, ew = d[0] * (k[0] - 1) + 1, d[1] * (k[1] - 1) + 1
    need_h, need_w = (ho - 1) * s[0] + eh, (wo - 1) * s[1] + ew
    extra_h, extra_w = max(0, need_h - h - 2 * p[0]), max(0, need_w - w - 2 * p[1])
    fill = -np.inf if mode == "max" else 0.0
    xp = np.pad(x, ((0, 0), (0, 0), (p[0], p[0] + extra_h), (p[1], p[1] + extra_w)),
                constant_values=fill)
    win = sliding_window_view(xp, (eh, ew), axis=(2, 3))[:, :, ::s[0], ::s[1], ::d[0], ::d[1]]
    win = win[:, :, :ho, :wo]
    if mode == "max":
        return win.max(axis=(4, 5)).astype(np.float32)
    total = win.sum(axis=(4, 5), dtype=np.float32)
    # Divisor: window size clipped to the padded input (count_include_pad) or to the input.
    ones = np.pad(np.ones((h, w), np.float32), ((p[0], p[0] + extra_h), (p[1], p[1] + extra_w)))
    inside = np.pad(np.ones((h + 2 * p[0], w + 2 * p[1]), np.float32), ((0, extra_h), (0, extra_w)))
    src = inside if int(attrs.get("count_include_pad", 1)) else ones
    cnt = sliding_window_view(src, (eh, ew))[::s[0], ::s[1]][:ho, :wo].sum(axis=(2, 3))
    return (total / cnt[None, None]).astype(np.float32)


def run_layer(layer, xs):
    k, a, arr = layer["kind"], layer["attrs"], layer["arrays"]
    x = xs[0]
    if k == "linear":
        y = x @ arr["weight"].T
        if "bias" in arr:
            y = y + arr["bias"]
    elif k == "conv2d":
        y = conv2d(x, arr["weight"], arr.get("bias"), _int2(a.get("stride"), 1),
                   _int2(a.get("padding"), 0), _int2(a.get("dilation"), 1), int(a.get("groups", 1)))
    elif k in ("batchnorm1d", "batchnorm2d"):
        f = arr["running_mean"].shape[0]
        gamma = arr.get("weight", np.ones(f, np.float32))
        beta = arr.get("bias", np.zeros(f, np.float32))
        scale = gamma / np.sqrt(arr["running_var"] + np.float32(a.get("eps", 1e-5)))
        shape = (1, f, 1, 1) if k == "batchnorm2d" else (1, f)
        y = (x - arr["running_mean"].reshape(shape)) * scale.reshape(shape) + beta.reshape(shape)
    elif k == "maxpool2d":
        y = pool2d(x, a, "max")
    elif k == "avgpool2d":
        y = pool2d(x, a, "avg")
    elif k == "global_avgpool":
        y = x.mean(axis=(2, 3), keepdims=True, dtype=np.float32)
    elif k == "flatten":
        y = x.reshape(x.shape[0], -1)
    elif k == "add":
        y = xs[0] + xs[1]
    elif k == "leaky_relu":
        y = np.where(x >= 0, x, x * np.float32(a.get("negative_slope", 0.01)))
    elif k == "elu":
        al = np.float32(a.get("alpha", 1.0))
        y = np.where(x > 0, x, al * (np.exp(x) - 1))
    elif k == "hardtanh":
        y = np.clip(x, a.get("min_val", -1.0), a.get("max_val", 1.0))
    elif k in ACTIVATIONS:
        y = ACTIVATIONS[k](x)
    else:
        raise ValueError(f"layer {layer['name']}: unknown kind '{k}'")
    act = _str(a.get("activation", "none"))
    return ACTIVATIONS[act](y).astype(np.float32)


def forward(net, x):
    """x: float32 [N, C, H, W], already normalised. Returns the last layer's output."""
    outs = {-1: x}
    for i, layer in enumerate(net["layers"]):
        outs[i] = run_layer(layer, [outs[j] for j in layer["inputs"]])
    return outs[len(net["layers"]) - 1]


def predict_logits(net, x, batch=500):
    return np.concatenate([forward(net, x[i:i + batch]) for i in range(0, x.shape[0], batch)])


def main():
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import data
    for path in sys.argv[1:]:
        net = load(path)
        img, lbl = data.load_split("test")
        x = ((img.astype(np.float32) / np.float32(255.0))[:, None] - net["mean"][None, :, None, None]) \
            / net["std"][None, :, None, None]
        logits = predict_logits(net, x.astype(np.float32))
        pred = logits.argmax(1)
        with h5py.File(path, "r") as f:
            ref = f["reference/predictions"][...] if "reference" in f else None
        msg = f"{path}: numpy acc {(pred == lbl).mean():.4f}"
        if ref is not None:
            msg += f", {(pred != ref).sum()} mismatches vs. reference predictions"
        print(msg)


if __name__ == "__main__":
    main()
