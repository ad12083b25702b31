#!/usr/bin/python3
"""Writes a zoo checkpoint in the pcmsim model format (docs/formats.md, format_version 1).

  /usr/bin/python3 zoo/export.py --ckpt build-zoo/zoo/resnet.pt --out zoo/resnet.h5

The `reference` group holds PyTorch's predictions (model in eval() mode, float32) on all 10,000
Fashion-MNIST test images in file order, their top-1 accuracy, the top-1 minus top-2 logit margin
and the logits. After writing, the file is re-read and run with the NumPy-only forward pass
(numpy_forward.py); the export fails if a prediction differs where PyTorch's margin is not a
near-tie.
"""
import argparse
import os
import subprocess
import sys

import h5py
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402
import models  # noqa: E402
import numpy_forward  # noqa: E402

CLASS_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

# Predictions of the NumPy forward may differ from PyTorch's only where PyTorch's own top-2 logits
# are this close: float32 summation order differs (im2col GEMM vs. PyTorch's kernels), which moves
# logits by ~1e-6 relative, so anything above 1e-4 must agree.
NEAR_TIE = 1e-4


def _f32(t):
    return np.ascontiguousarray(t.detach().cpu().numpy().astype(np.float32))


class Writer:
    """Appends layer groups NNN_<name> in execution order."""

    def __init__(self, group, learned_input_ranges=None):
        self.g = group
        self.n = 0
        self.ranges = dict(learned_input_ranges or {})  # module name -> learned DAC range

    def layer(self, name, kind, inputs=None, activation=None, **attrs):
        grp = self.g.create_group(f"{self.n:03d}_{name}")
        self.n += 1
        grp.attrs["kind"] = kind
        if inputs is not None:
            grp.attrs["inputs"] = inputs
        if activation is not None:
            grp.attrs["activation"] = activation
        for k, v in attrs.items():
            grp.attrs[k] = v
        return grp

    def linear(self, name, m, activation=None, inputs=None):
        g = self.layer(name, "linear", inputs, activation,
                       in_features=m.in_features, out_features=m.out_features)
        self.learned_range(name, g)
        g["weight"] = _f32(m.weight)
        if m.bias is not None:
            g["bias"] = _f32(m.bias)

    def conv(self, name, m, activation=None, inputs=None):
        if m.padding_mode != "zeros" or isinstance(m.padding, str):
            raise ValueError(f"[zoo.export] {name}: only numeric zero padding is supported")
        g = self.layer(name, "conv2d", inputs, activation,
                       in_channels=m.in_channels, out_channels=m.out_channels, groups=m.groups,
                       kernel_size=list(m.kernel_size), stride=list(m.stride),
                       padding=list(m.padding), dilation=list(m.dilation))
        self.learned_range(name, g)
        g["weight"] = _f32(m.weight)
        if m.bias is not None:
            g["bias"] = _f32(m.bias)

    def learned_range(self, name, g):
        if name in self.ranges:
            g.attrs["learned_input_range"] = float(self.ranges.pop(name))

    def bn2d(self, name, m, activation=None, inputs=None):
        g = self.layer(name, "batchnorm2d", inputs, activation,
                       num_features=m.num_features, eps=float(m.eps))
        g["running_mean"] = _f32(m.running_mean)
        g["running_var"] = _f32(m.running_var)
        g["weight"] = _f32(m.weight)
        g["bias"] = _f32(m.bias)

    def maxpool(self, name, k):
        self.layer(name, "maxpool2d", kernel_size=[k, k], stride=[k, k], padding=[0, 0])


def write_layers(model, L, learned_input_ranges=None):
    w = Writer(L, learned_input_ranges)
    if isinstance(model, models.MLP):
        w.layer("flatten", "flatten")
        w.linear("fc1", model.fc1, "relu")
        w.linear("fc2", model.fc2, "relu")
        w.linear("fc3", model.fc3)
    elif isinstance(model, models.LeNet5):
        w.conv("conv1", model.conv1, "relu")
        w.maxpool("pool1", 2)
        w.conv("conv2", model.conv2, "relu")
        w.maxpool("pool2", 2)
        w.layer("flatten", "flatten")
        w.linear("fc1", model.fc1, "relu")
        w.linear("fc2", model.fc2, "relu")
        w.linear("fc3", model.fc3)
    elif isinstance(model, models.ViT):
        write_vit(w, model)
    elif isinstance(model, models.ResNet):
        w.conv("stem", model.stem)
        w.bn2d("stem_bn", model.stem_bn, "relu")
        w.maxpool("stem_pool", 2)
        prev = "stem_pool"
        for i, blk in enumerate(model.blocks):
            p = f"blocks.{i}"
            w.conv(f"{p}.conv1", blk.conv1, inputs=prev)
            w.bn2d(f"{p}.bn1", blk.bn1, "relu")
            w.conv(f"{p}.conv2", blk.conv2)
            w.bn2d(f"{p}.bn2", blk.bn2)
            shortcut = prev
            if blk.down is not None:
                w.conv(f"{p}.down.0", blk.down[0], inputs=prev)
                w.bn2d(f"{p}.down.1", blk.down[1])
                shortcut = f"{p}.down.1"
            w.layer(f"{p}.add", "add", inputs=f"{p}.bn2,{shortcut}", activation="relu")
            prev = f"{p}.add"
        w.layer("avgpool", "global_avgpool")
        w.layer("flatten", "flatten")
        w.linear("fc", model.fc)
    else:
        raise TypeError(f"[zoo.export] no exporter for {type(model).__name__}")
    if w.ranges:
        raise ValueError(f"[zoo.export] learned input ranges of unknown layers: {sorted(w.ranges)}")


def write_vit(w, model):
    """The ViT with the layer kinds for transformers (docs/formats.md); per-sample shapes in
    the comments (T tokens of D features, H heads of d)."""
    D = model.pos.shape[-1]
    T = model.pos.shape[1]
    w.conv("patch", model.patch)                                   # (D, 4, 4)
    w.layer("tokens", "flatten", start_dim=1, end_dim=-1)          # (D, T)
    w.layer("tokens_t", "transpose", perm=[1, 0])                  # (T, D)
    g = w.layer("pos", "constant")
    g["weight"] = _f32(model.pos[0])                               # (T, D)
    w.layer("embed", "add", inputs="tokens_t,pos")
    x = "embed"
    for i, blk in enumerate(model.blocks):
        p = f"blocks.{i}"
        H = blk.heads
        d = D // H

        def ln(name, m, inputs):
            g = w.layer(name, "layernorm", inputs=inputs, normalized_shape=[D], eps=float(m.eps))
            g["weight"] = _f32(m.weight)
            g["bias"] = _f32(m.bias)
        ln(f"{p}.ln1", blk.ln1, x)
        for name in ("q", "k", "v"):
            w.linear(f"{p}.{name}", getattr(blk, name), inputs=f"{p}.ln1")
            w.layer(f"{p}.{name}_heads", "reshape", shape=[T, H, d])   # (T, H, d)
            w.layer(f"{p}.{name}_t", "transpose",                      # (H, T, d) or k: (H, d, T)
                    perm=[1, 2, 0] if name == "k" else [1, 0, 2])
        w.layer(f"{p}.scores", "matmul", inputs=f"{p}.q_t,{p}.k_t")       # (H, T, T), digital
        w.layer(f"{p}.scores_scaled", "scale", scale=float(d ** -0.5))
        w.layer(f"{p}.attn", "softmax", axis=-1)
        w.layer(f"{p}.mix", "matmul", inputs=f"{p}.attn,{p}.v_t")        # (H, T, d), digital
        w.layer(f"{p}.mix_t", "transpose", perm=[1, 0, 2])                # (T, H, d)
        w.layer(f"{p}.mix_tokens", "reshape", shape=[T, D])               # (T, D)
        w.linear(f"{p}.proj", blk.proj)
        w.layer(f"{p}.res1", "add", inputs=f"{x},{p}.proj")
        ln(f"{p}.ln2", blk.ln2, f"{p}.res1")
        w.linear(f"{p}.fc1", blk.fc1, activation="gelu")
        w.linear(f"{p}.fc2", blk.fc2)
        w.layer(f"{p}.res2", "add", inputs=f"{p}.res1,{p}.fc2")
        x = f"{p}.res2"
    g = w.layer("ln", "layernorm", normalized_shape=[D], eps=float(model.ln.eps))
    g["weight"] = _f32(model.ln.weight)
    g["bias"] = _f32(model.ln.bias)
    w.layer("pool", "reduce_mean", axes=[0], keepdims=0)                  # (D)
    w.linear("head", model.head)


def git_revision():
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip()
    except OSError:
        return ""


@torch.no_grad()
def torch_reference(model, x, batch=1000):
    model.eval()
    logits = torch.cat([model(x[i:i + batch]) for i in range(0, x.shape[0], batch)]).numpy()
    return logits.astype(np.float32)


def margins(logits):
    top2 = np.sort(logits, axis=1)[:, -2:]
    return (top2[:, 1] - top2[:, 0]).astype(np.float32)


def export_checkpoint(ckpt_path, out_path, data_dir=data.DEFAULT_DIR, verify=True):
    ck = torch.load(ckpt_path, map_location="cpu")
    meta = ck["meta"]
    model = models.build(meta["model"])
    # pcmsim.torch's learned input ranges (TrainingParams.learn_input_ranges) are not weights of
    # the plain model: they go to the file as the layers' learned_input_range.
    state = dict(ck["state_dict"])
    suffix = ".input_range"
    ranges = {k[:-len(suffix)]: float(state.pop(k)) for k in list(state) if k.endswith(suffix)}
    model.load_state_dict(state)
    model.eval()
    test_img, test_lbl = data.load_split("test", data_dir)
    x = data.to_float(test_img, meta["mean"], meta["std"])
    logits = torch_reference(model, torch.from_numpy(x))
    pred = logits.argmax(1)
    acc = float((pred == test_lbl).mean())
    kind = meta.get("hw_aware_kind", "weight_noise" if meta["hw_aware"] else "")
    name = meta["model"] + ({"pcmsim": f"_hwa_p{meta.get('pcmsim_p_out', 0)}",
                             "weight_noise": "_hwa"}.get(kind, ""))

    tmp = out_path + ".tmp"
    with h5py.File(tmp, "w") as f:
        f.attrs["format"] = "pcmsim-model"
        f.attrs["format_version"] = 1
        f.attrs["name"] = name
        f.attrs["input_shape"] = np.array([1, 28, 28], dtype=np.int64)
        f.attrs["num_classes"] = 10
        f.attrs["input_mean"] = np.array([meta["mean"]], dtype=np.float64)
        f.attrs["input_std"] = np.array([meta["std"]], dtype=np.float64)
        f.attrs["class_names"] = CLASS_NAMES
        # Provenance (ignored by the loader).
        f.attrs["dataset"] = "fashion-mnist"
        f.attrs["training_command"] = meta["command"]
        f.attrs["training_seed"] = meta["seed"]
        f.attrs["training_epochs"] = meta["epochs"]
        f.attrs["hw_aware"] = int(meta["hw_aware"])
        f.attrs["hw_aware_eta"] = meta["eta"]
        if meta.get("layer_eta"):
            f.attrs["hw_aware_layer_eta"] = ",".join(f"{k}={v:g}" for k, v in meta["layer_eta"].items())
        f.attrs["hw_aware_clip_sigma"] = meta["clip_sigma"]
        if kind == "pcmsim":  # trained through pcmsim.torch (the simulator's forward)
            f.attrs["hw_aware_kind"] = "pcmsim"
            f.attrs["hw_aware_p_in"] = int(meta["pcmsim_p_in"])
            f.attrs["hw_aware_p_out"] = int(meta["pcmsim_p_out"])
            f.attrs["hw_aware_calibrate"] = int(meta["pcmsim_calibrate"])
            f.attrs["hw_aware_calibration_percentile"] = float(
                meta.get("pcmsim_calibration_percentile", 0.0))
            f.attrs["hw_aware_t_train_s"] = np.array(meta["pcmsim_t_train"], dtype=np.float64)
            if meta.get("pcmsim_digital_layers"):
                f.attrs["hw_aware_digital_layers"] = meta["pcmsim_digital_layers"]
        f.attrs["fp32_test_accuracy"] = acc
        f.attrs["torch_version"] = str(meta["torch_version"])
        f.attrs["git_revision"] = git_revision()
        if meta.get("pcmsim_learn_input_ranges"):
            f.attrs["hw_aware_learn_input_ranges"] = 1
        write_layers(model, f.create_group("layers"), ranges)
        r = f.create_group("reference")
        r.attrs["dataset"] = "fashion-mnist:t10k"
        r.attrs["num_images"] = int(x.shape[0])
        r.attrs["accuracy"] = acc
        r["predictions"] = pred.astype(np.int64)
        r["margin"] = margins(logits)
        r["logits"] = logits
    os.replace(tmp, out_path)

    # zoo/numpy_forward.py implements the CNN kinds only; the ViT file is checked against its
    # reference by pcmsim itself (tests/integration/test_fp32_zoo.cpp, every zoo/*.h5).
    if verify and meta["model"] != "vit":
        check = verify_file(out_path, x, test_lbl)
        print(f"{out_path}: torch acc {acc:.4f}; numpy forward from the file: acc {check['acc']:.4f}, "
              f"{check['mismatches']} prediction mismatches (all near-ties: {check['ties_only']}), "
              f"max |logit diff| {check['max_logit_diff']:.2e}", flush=True)
        if not check["ties_only"]:
            raise RuntimeError(f"[zoo.export] {out_path}: NumPy forward disagrees with PyTorch")
    return acc


def verify_file(path, x, labels):
    """Re-reads the file and runs it with NumPy only; compares with its reference group."""
    net = numpy_forward.load(path)
    logits = numpy_forward.predict_logits(net, x)
    with h5py.File(path, "r") as f:
        ref_pred = f["reference/predictions"][...]
        ref_margin = f["reference/margin"][...]
        ref_logits = f["reference/logits"][...]
    pred = logits.argmax(1)
    diff = pred != ref_pred
    return {"acc": float((pred == labels).mean()), "mismatches": int(diff.sum()),
            "ties_only": bool(np.all(ref_margin[diff] < NEAR_TIE)),
            "max_logit_diff": float(np.abs(logits - ref_logits).max())}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--data-dir", default=data.DEFAULT_DIR)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    export_checkpoint(a.ckpt, a.out, a.data_dir)


if __name__ == "__main__":
    main()
