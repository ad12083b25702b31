"""Writes the ONNX fixtures of tests/unit/nets/test_onnx_import.cpp (no Python needed there):

- onnx_tiny.onnx: a small random network exported by PyTorch's own exporter (opset 13,
  dynamic batch) with what exporters write awkwardly: reflect padding (a Pad fed by a shape
  subgraph), adaptive pooling (AveragePool), LayerNorm (decomposed), GELU (Erf), attention
  (MatMul of two activations, Softmax), Linear on tokens (MatMul + Add), a class token,
  flatten/transpose through Shape/Gather/Concat/Reshape; its metadata_props give the
  normalisation;
- onnx_tiny_io.h5 (a pcmsim-dataset): 16 inputs in [0, 1] (`images`), PyTorch's `logits`;
- onnx_opset18.onnx: onnx_tiny.onnx declaring opset 18 (not supported);
- onnx_unsupported.onnx: a model with two unsupported operators (Resize, Softplus).

  /usr/bin/python3 tests/data/make_onnx_fixture.py     # needs python3-torch, python3-onnx, h5py
"""
import os
import warnings

import h5py
import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
torch.manual_seed(4321)
torch.set_num_threads(1)
MEAN, STD = 0.25, 0.5


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 4, 3, padding=1)
        self.c2 = nn.Conv2d(4, 8, 3, padding=1, padding_mode="reflect")
        self.cls = nn.Parameter(torch.randn(1, 1, 8))
        self.ln = nn.LayerNorm(8)
        self.q, self.k, self.v = nn.Linear(8, 8), nn.Linear(8, 8), nn.Linear(8, 8)
        self.mlp = nn.Sequential(nn.Linear(8, 12), nn.GELU(), nn.Linear(12, 8))
        self.fc = nn.Linear(8, 5)
        with torch.no_grad():
            self.ln.weight.uniform_(0.5, 1.5)
            self.ln.bias.uniform_(-0.2, 0.2)

    def forward(self, x):                                         # (N, 1, 8, 8)
        y = F.avg_pool2d(F.relu(self.c1(x)), 2)                   # (N, 4, 4, 4)
        t = self.c2(y).flatten(2).transpose(1, 2)                 # (N, 16, 8)
        t = torch.cat([self.cls.expand(x.shape[0], -1, -1), t], dim=1)
        h = self.ln(t)
        a = (self.q(h) @ self.k(h).transpose(-2, -1)) * 8 ** -0.5
        t = t + torch.softmax(a, dim=-1) @ self.v(h)
        t = t + self.mlp(self.ln(t))
        return self.fc(t.mean(1))


def export(model, shape, path, opset=13):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), torch.zeros((1,) + shape), path, opset_version=opset,
                          input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "n"}, "logits": {0: "n"}})


def main():
    model = Tiny().eval()
    path = os.path.join(HERE, "onnx_tiny.onnx")
    export(model, (1, 8, 8), path)
    m = onnx.load(path)
    onnx.helper.set_model_props(m, {"input_mean": str(MEAN), "input_std": str(STD),
                                    "class_names": "a,b,c,d,e"})
    onnx.save(m, path)
    images = torch.rand(16, 1, 8, 8)
    with torch.no_grad():
        logits = model((images - MEAN) / STD).numpy()
    with h5py.File(os.path.join(HERE, "onnx_tiny_io.h5"), "w") as f:
        f.attrs.update(format="pcmsim-dataset", format_version=1, name="onnx_tiny")
        f["images"] = images.numpy().astype(np.float32)
        f["labels"] = logits.argmax(1).astype(np.int64)
        f["logits"] = logits.astype(np.float32)
    m.opset_import[0].version = 18
    onnx.save(m, os.path.join(HERE, "onnx_opset18.onnx"))
    bad = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Upsample(scale_factor=2), nn.Softplus(),
                        nn.Flatten(), nn.Linear(2 * 12 * 12, 3))
    export(bad, (1, 8, 8), os.path.join(HERE, "onnx_unsupported.onnx"))


if __name__ == "__main__":
    main()
