"""A PyTorch model converted in Python gives the same FP32 predictions as PyTorch itself
(skipped when PyTorch is not installed)."""
import sys

import numpy as np
import pytest

import pcmsim

from conftest import SOURCE_DIR

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

sys.path.insert(0, str(SOURCE_DIR / "zoo"))
import models  # noqa: E402  (the zoo's PyTorch networks)


def randomise_batchnorm(model, seed=0):
    """Non-trivial eval statistics, so batch norm is really exercised."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.2)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.1)


def compare(model, input_shape, n=64, seed=0):
    torch.manual_seed(seed)
    model.eval()
    x = torch.randn((n,) + tuple(input_shape))
    with torch.no_grad():
        ref = model(x).numpy()
    net = pcmsim.from_torch(model, input_shape)
    ours = pcmsim.fp32_logits(net, np.ascontiguousarray(x.numpy()))
    # float32 summation order differs (im2col GEMM vs PyTorch's kernels): ~1e-6 relative.
    scale = np.abs(ref).max()
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-4 * scale)
    top2 = np.sort(ref, axis=1)[:, -2:]
    decided = (top2[:, 1] - top2[:, 0]) > 1e-4 * scale
    assert np.all(ours.argmax(1)[decided] == ref.argmax(1)[decided])
    return net


@pytest.mark.parametrize("name", ["mlp", "lenet5", "resnet"])
def test_zoo_models(name):
    torch.manual_seed(1)
    model = models.build(name)
    randomise_batchnorm(model)
    net = compare(model, (1, 28, 28))
    kinds = [layer.kind for layer in net.layers]
    if name == "resnet":
        assert kinds.count("add") == 3 and "global_avgpool" in kinds
        assert kinds.count("conv2d") == 9  # stem + 3 x 2 + 2 downsampling shortcuts
    assert net.num_classes == 10


def test_sequential_with_every_supported_layer_kind():
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=2, bias=False), nn.LeakyReLU(0.1),
        nn.MaxPool2d(2, ceil_mode=True), nn.Conv2d(8, 12, 1), nn.Hardswish(),
        nn.AvgPool2d(2, stride=1), nn.ELU(0.7), nn.Dropout(0.3), nn.AdaptiveAvgPool2d(1),
        nn.Flatten(), nn.Linear(12, 20), nn.BatchNorm1d(20), nn.GELU(), nn.Linear(20, 16),
        nn.Tanh(), nn.Linear(16, 12), nn.SiLU(), nn.Linear(12, 10), nn.Hardtanh(-0.5, 0.5),
        nn.Linear(10, 7), nn.Sigmoid(), nn.Linear(7, 5), nn.ReLU6(), nn.Linear(5, 4))
    randomise_batchnorm(model, seed=3)
    net = compare(model, (3, 11, 11))
    assert net.num_classes == 4 and net.name == "Sequential"


class FunctionalNet(nn.Module):
    """Residual adds, functional calls and Tensor methods as fx sees them."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(2, 6, 3, padding=1)
        self.conv2 = nn.Conv2d(6, 6, 3, padding=1)
        self.fc = nn.Linear(6, 3)

    def forward(self, x):
        y = F.relu(self.conv1(x))
        z = self.conv2(y).relu()
        y = torch.add(y, z)
        y = F.avg_pool2d(y + z, 2)
        y = y.mean((2, 3))
        return self.fc(y.view(y.size(0), -1))


def test_functional_model_with_residuals():
    net = compare(FunctionalNet(), (2, 8, 8))
    assert [layer.kind for layer in net.layers].count("add") == 2


def test_converted_model_runs_on_the_simulated_chip():
    torch.manual_seed(2)
    model = models.build("lenet5")
    net = pcmsim.from_torch(model, (1, 28, 28), input_mean=[0.286], input_std=[0.353],
                            name="lenet")
    assert net.input_mean == pytest.approx([0.286]) and net.name == "lenet"
    chip = pcmsim.AnalogChip(net, pcmsim.SimulationConfig(seed=1))
    chip.set_time(60.0)
    x = np.random.default_rng(0).standard_normal((16, 784)).astype(np.float32)
    assert chip.logits(x).shape == (16, 10)


def test_unsupported_layers_are_named():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Upsample(scale_factor=2), nn.Flatten(),
                          nn.Linear(2 * 12 * 12, 3))
    with pytest.raises(ValueError, match="Upsample"):
        pcmsim.from_torch(model, (1, 8, 8))
    with pytest.raises(ValueError, match="input_shape"):
        pcmsim.from_torch(nn.Linear(3, 2), (1, 1, 1, 3))


def test_wrong_input_shape_is_a_clear_value_error(capfd):
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 4))
    with pytest.raises(ValueError) as info:
        pcmsim.from_torch(model, (1, 8, 8))  # one channel for a three-channel first layer
    text = str(info.value)
    assert "input_shape = (1, 8, 8)" in text
    assert "first layer '0' (Conv2d) expects 3 input channels" in text
    assert "(3, H, W)" in text
    assert isinstance(info.value.__cause__, RuntimeError)  # torch's error, kept as the cause
    assert "Traceback" not in capfd.readouterr().err  # nothing printed on the way
    # Spatial size: the flattened features do not match the Linear layer.
    torch.manual_seed(0)
    mlp = models.build("mlp")
    with pytest.raises(ValueError, match=r"input_shape = \(1, 32, 32\).*"
                                         r"'fc1' \(ALinear\) expects 784 input features"):
        pcmsim.from_torch(mlp, (1, 32, 32))
    with pytest.raises(ValueError, match="input_shape = 'abc'"):
        pcmsim.from_torch(mlp, "abc")
    # The right shape still converts.
    assert pcmsim.from_torch(model, (3, 8, 8)).num_classes == 4
