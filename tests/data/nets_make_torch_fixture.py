"""Writes tests/data/nets_torch_tiny.h5 (a pcmsim-model with a `reference` group) and
tests/data/nets_torch_tiny_data.h5 (its inputs, a pcmsim-dataset): a small random residual CNN
that uses every layer kind of docs/formats.md with awkward geometry (padding, dilation, groups,
depthwise, asymmetric kernels and strides, ceil_mode, count_include_pad), run by PyTorch in
eval mode. tests/integration/test_fp32_torch.cpp checks that pcmsim's FP32 path reproduces
PyTorch's logits. The weights are random (seeded); nothing is trained.

  /usr/bin/python3 tests/data/nets_make_torch_fixture.py     # needs python3-torch, h5py
"""
import os

import h5py
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
torch.manual_seed(1234)
torch.set_num_threads(1)

C, H, W = 3, 11, 10
N_IMAGES = 32
MEAN = [0.4, 0.5, 0.3]
STD = [0.25, 0.2, 0.3]


def randomise_bn(bn):
    with torch.no_grad():
        bn.running_mean.uniform_(-0.3, 0.3)
        bn.running_var.uniform_(0.5, 1.5)
        bn.weight.uniform_(0.7, 1.3)
        bn.bias.uniform_(-0.2, 0.2)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8, eps=1e-3)
        self.dw = nn.Conv2d(8, 8, 3, padding=2, dilation=2, groups=8, bias=False)
        self.bn2 = nn.BatchNorm2d(8)
        self.pool1 = nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True)
        self.conv3 = nn.Conv2d(8, 12, (2, 3), stride=(2, 1), padding=(1, 0), groups=4)
        self.pool2 = nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)
        self.conv4 = nn.Conv2d(12, 6, 1)
        self.fc1 = nn.Linear(6, 16)
        self.bn3 = nn.BatchNorm1d(16)
        self.fc2 = nn.Linear(16, 16)
        self.fc3 = nn.Linear(16, 5)
        for bn in (self.bn1, self.bn2, self.bn3):
            randomise_bn(bn)

    def forward(self, x):
        a = F.relu(self.bn1(self.conv1(x)))
        b = F.relu6(self.bn2(self.dw(a)))
        x = F.relu(a + b)
        x = self.pool1(x)
        x = F.gelu(self.conv3(x))
        x = self.pool2(x)
        x = F.hardswish(F.silu(self.conv4(x)))
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        x = F.leaky_relu(self.bn3(self.fc1(x)), 0.1)
        x = F.hardtanh(F.elu(self.fc2(x), 0.7), -0.5, 2.0)
        x = F.hardsigmoid(torch.tanh(torch.sigmoid(x) * 3 - 1.5) * 4)  # exercise the three
        return self.fc3(x)


def main():
    net = Net().eval()
    images = torch.rand(N_IMAGES, C, H, W)
    x = (images - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    with torch.no_grad():
        logits = net(x).numpy().astype(np.float32)

    def t(p):
        return p.detach().numpy().astype(np.float32)

    path = os.path.join(HERE, "nets_torch_tiny.h5")
    with h5py.File(path, "w") as f:
        f.attrs.update(format="pcmsim-model", format_version=1, name="torch_tiny",
                       input_shape=np.array([C, H, W], dtype=np.int64), num_classes=5,
                       input_mean=np.array(MEAN), input_std=np.array(STD),
                       class_names=np.array(["c0", "c1", "c2", "c3", "c4"], dtype=h5py.string_dtype()),
                       generator="tests/data/nets_make_torch_fixture.py",
                       torch_version=str(torch.__version__))
        L = f.create_group("layers")
        n = [0]

        def layer(name, kind, **attrs):
            g = L.create_group(f"{n[0]:03d}_{name}")
            n[0] += 1
            g.attrs["kind"] = kind
            for k, v in attrs.items():
                if isinstance(v, torch.Tensor) or isinstance(v, nn.Parameter):
                    g[k] = t(v)
                else:
                    g.attrs[k] = v
            return g

        def conv(name, m, **extra):
            kw = dict(in_channels=m.in_channels, out_channels=m.out_channels, groups=m.groups,
                      kernel_size=list(m.kernel_size), stride=list(m.stride),
                      padding=list(m.padding), dilation=list(m.dilation), weight=m.weight)
            if m.bias is not None:
                kw["bias"] = m.bias
            kw.update(extra)
            return layer(name, "conv2d", **kw)

        def bn(name, m, kind, **extra):
            return layer(name, kind, num_features=m.num_features, eps=m.eps,
                         running_mean=m.running_mean, running_var=m.running_var,
                         weight=m.weight, bias=m.bias, **extra)

        conv("conv1", net.conv1)                                   # 0
        bn("bn1", net.bn1, "batchnorm2d", activation="relu")       # 1
        conv("dw", net.dw)                                         # 2
        bn("bn2", net.bn2, "batchnorm2d", activation="relu6")      # 3
        layer("add1", "add", inputs="bn1, 3", activation="relu")   # 4
        layer("pool1", "maxpool2d", kernel_size=3, stride=2, padding=1, ceil_mode=1)
        conv("conv3", net.conv3)
        layer("gelu", "gelu", approximate="none")
        layer("pool2", "avgpool2d", kernel_size=[3, 3], stride=[2, 2], padding=[1, 1],
              ceil_mode=1, count_include_pad=0)
        conv("conv4", net.conv4, activation="silu")
        layer("hswish", "hardswish")
        layer("gap", "global_avgpool")
        layer("flat", "flatten")
        layer("fc1", "linear", in_features=6, out_features=16, weight=net.fc1.weight,
              bias=net.fc1.bias)
        bn("bn3", net.bn3, "batchnorm1d")
        layer("lrelu", "leaky_relu", negative_slope=0.1)
        layer("fc2", "linear", in_features=16, out_features=16, weight=net.fc2.weight,
              bias=net.fc2.bias)
        layer("elu", "elu", alpha=0.7)
        layer("htanh", "hardtanh", min_val=-0.5, max_val=2.0)
        layer("sig", "sigmoid")
        # sigmoid(x)*3 - 1.5 as an exact diagonal linear layer (3 and -1.5 are exact in fp32).
        eye = torch.eye(16)
        layer("affine1", "linear", in_features=16, out_features=16, weight=eye * 3,
              bias=torch.full((16,), -1.5))
        layer("tanh", "tanh")
        layer("affine2", "linear", in_features=16, out_features=16, weight=eye * 4)
        layer("hsig", "hardsigmoid")
        layer("drop", "dropout")
        layer("fc3", "linear", in_features=16, out_features=5, weight=net.fc3.weight,
              bias=net.fc3.bias)
        r = f.create_group("reference")
        r.attrs.update(dataset="nets_torch_tiny_data.h5", num_images=N_IMAGES)
        pred = logits.argmax(1)
        srt = np.sort(logits, 1)
        r["predictions"] = pred.astype(np.int64)
        r["margin"] = (srt[:, -1] - srt[:, -2]).astype(np.float32)
        r["logits"] = logits

    with h5py.File(os.path.join(HERE, "nets_torch_tiny_data.h5"), "w") as f:
        f.attrs.update(format="pcmsim-dataset", format_version=1, name="nets_torch_tiny_data")
        f["images"] = images.numpy().astype(np.float32)
        f["labels"] = (np.arange(N_IMAGES) % 5).astype(np.int64)
    print("wrote", path, "logits range", logits.min(), logits.max())


if __name__ == "__main__":
    main()
