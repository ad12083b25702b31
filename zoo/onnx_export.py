"""Export a zoo model to ONNX with PyTorch's own exporter (torch.onnx.export).

The zoo keeps its trained weights in pcmsim's HDF5 format only; this rebuilds the PyTorch
module of the model (zoo/models.py), loads the weights from the HDF5 file, and exports it. The
input normalisation, which ONNX does not carry, goes into the model's metadata_props
(`input_mean`, `input_std`, `class_names`, comma-separated), where pcmsim's importer reads it.

    python3 zoo/onnx_export.py zoo/resnet_hwa.h5 resnet_hwa.onnx [--opset 13]
"""
import argparse
import os
import sys

import h5py
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import models  # noqa: E402

# Model file name (without _hwa) -> module class.
ARCHITECTURES = {"mlp": models.MLP, "lenet5": models.LeNet5, "resnet": models.ResNet,
                 "vit": models.ViT}


def architecture(h5_path):
    with h5py.File(h5_path, "r") as f:
        name = str(f.attrs["name"])
    base = name[:-4] if name.endswith("_hwa") else name
    for key, cls in ARCHITECTURES.items():
        if base == key:
            return cls
    raise ValueError(f"[zoo.onnx_export] {h5_path}: no PyTorch architecture for model '{name}'")


def torch_model(h5_path):
    """The PyTorch module of a zoo model file, with its weights, in eval() mode."""
    model = architecture(h5_path)()
    state = model.state_dict()
    loaded = {}
    with h5py.File(h5_path, "r") as f:
        for group in f["layers"].values():
            layer = group.name.split("/")[-1].split("_", 1)[1]
            for key in ("weight", "bias", "running_mean", "running_var"):
                if key in group:
                    # A constant layer holds a parameter of its own name (the ViT's `pos`).
                    name = layer if group.attrs["kind"] == "constant" else f"{layer}.{key}"
                    loaded[name] = torch.from_numpy(np.asarray(group[key][...]))
    missing = [k for k in state if k not in loaded and not k.endswith("num_batches_tracked")]
    if missing:
        raise ValueError(f"[zoo.onnx_export] {h5_path}: no weights for {missing}")
    for k, v in loaded.items():
        if k not in state:
            raise ValueError(f"[zoo.onnx_export] {h5_path}: '{k}' is not a parameter of "
                             f"{type(model).__name__}")
        state[k] = v.reshape(state[k].shape).to(state[k].dtype)
    model.load_state_dict(state)
    return model.eval()


def export(h5_path, onnx_path, opset=13):
    """Writes the ONNX file (batch axis dynamic) and returns the PyTorch module."""
    import onnx

    model = torch_model(h5_path)
    with h5py.File(h5_path, "r") as f:
        name = str(f.attrs["name"])
        shape = [int(v) for v in f.attrs["input_shape"]]
        meta = {"input_mean": ",".join(repr(float(v)) for v in f.attrs["input_mean"]),
                "input_std": ",".join(repr(float(v)) for v in f.attrs["input_std"])}
        if "class_names" in f.attrs:
            meta["class_names"] = ",".join(str(s) for s in f.attrs["class_names"])
    example = torch.zeros([1] + shape)
    torch.onnx.export(model, example, onnx_path, opset_version=opset, input_names=["input"],
                      output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    m = onnx.load(onnx_path)
    m.graph.name = name
    onnx.helper.set_model_props(m, meta)
    onnx.save(m, onnx_path)
    return model


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", help="zoo model file (.h5)")
    p.add_argument("out", help="ONNX file to write")
    p.add_argument("--opset", type=int, default=13)
    a = p.parse_args()
    export(a.model, a.out, a.opset)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
