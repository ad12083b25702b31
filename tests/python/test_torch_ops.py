"""Each operator added for transformers and imported graphs, converted by from_torch and run by
pcmsim's FP32 forward, against PyTorch itself (skipped when PyTorch is not installed)."""
import numpy as np
import pytest

import pcmsim

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

from test_torch_convert import compare  # noqa: E402


class Lambda(nn.Module):
    """A module whose forward is a function of one input (traced by fx like any forward)."""

    def __init__(self, fn, **modules):
        super().__init__()
        self.fn = fn
        for k, m in modules.items():
            setattr(self, k, m)

    def forward(self, x):
        return self.fn(self, x)


def head(features, classes=5):
    return nn.Sequential(nn.Flatten(), nn.Linear(features, classes))


def kinds(net):
    return [layer.kind for layer in net.layers]


def test_concat_of_channels_and_of_features():
    class Cat(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(2, 3, 3, padding=1)
            self.b = nn.Conv2d(2, 4, 1)
            self.fc = nn.Linear(7 * 6 * 6 + 7 * 6 * 6, 5)

        def forward(self, x):
            y = torch.cat([self.a(x), self.b(x)], dim=1)       # channels (image layout)
            z = torch.cat((y.flatten(2), y.flatten(2)), -1)    # (7, 72): last axis, plain
            return self.fc(z.flatten(1))
    net = compare(Cat(), (2, 6, 6))
    assert kinds(net).count("concat") == 2


def test_layernorm_over_one_and_two_trailing_axes():
    model = Lambda(lambda s, x: s.fc(s.ln2(s.ln1(x.flatten(2)).transpose(1, 2)).flatten(1)),
                   ln1=nn.LayerNorm(16), ln2=nn.LayerNorm([16, 3]), fc=nn.Linear(48, 4))
    with torch.no_grad():
        for ln in (model.ln1, model.ln2):
            ln.weight.uniform_(0.5, 1.5)
            ln.bias.uniform_(-0.2, 0.2)
    net = compare(model, (3, 4, 4))
    assert kinds(net).count("layernorm") == 2 and "transpose" in kinds(net)


@pytest.mark.parametrize("dim", [1, 2, -1])
def test_softmax_and_log_softmax_over_an_axis(dim):
    model = Lambda(lambda s, x: s.fc((F.softmax(x, dim=dim) + x.log_softmax(dim)).flatten(1)),
                   fc=nn.Linear(3 * 5 * 4, 6))
    net = compare(model, (3, 5, 4))
    assert {"softmax", "log_softmax"} <= set(kinds(net))


def test_reshape_transpose_permute_and_flatten_of_any_axes():
    def fn(s, x):                      # x: (N, 4, 6, 2)
        y = x.reshape(x.shape[0], 6, 8).transpose(1, 2)   # (N, 8, 6)
        y = y.permute(0, 2, 1).contiguous().view(-1, 2, 24)  # (N, 2, 24)
        y = torch.flatten(y, 1, 2)                          # (N, 48)
        return s.fc(y)
    net = compare(Lambda(fn, fc=nn.Linear(48, 3)), (4, 6, 2))
    assert {"reshape", "transpose", "flatten"} <= set(kinds(net))


def test_matmul_of_two_activations_is_attention():
    class Attention(nn.Module):
        def __init__(self, d=8):
            super().__init__()
            self.q, self.k, self.v = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
            self.fc = nn.Linear(5 * d, 3)

        def forward(self, x):          # (N, 5, 8): 5 tokens
            a = (self.q(x) @ self.k(x).transpose(-2, -1)) * 8 ** -0.5
            y = torch.matmul(a.softmax(-1), self.v(x))
            return self.fc(torch.bmm(a, y).flatten(1))
    net = compare(Attention(), (5, 8))
    assert kinds(net).count("matmul") == 3
    assert kinds(net).count("linear") == 4  # the linears over tokens stay analog matrices
    shapes = [m.rows for m in net.layer_matrices()]
    assert shapes == [8, 8, 8, 40]


def test_scalar_arithmetic_and_elementwise_of_two_tensors():
    def fn(s, x):
        y = x * 0.5 + 1.0
        y = (2.0 - y) / 4.0 - x
        y = y * torch.sigmoid(x) + x.sub(0.25).mul(3.0)
        y = torch.sqrt(y * y + 1.0) + torch.erf(x) + x ** 2 + y / (x * x + 1.0)
        return s.fc(y.flatten(1))
    net = compare(Lambda(fn, fc=nn.Linear(2 * 3 * 3, 4)), (2, 3, 3))
    assert {"scale", "mul", "sub", "div", "sqrt", "erf", "pow"} <= set(kinds(net))


def test_broadcasting_against_parameters():
    class Tokens(nn.Module):           # a class token and a position embedding, as in a ViT
        def __init__(self):
            super().__init__()
            self.cls = nn.Parameter(torch.randn(1, 1, 6))
            self.pos = nn.Parameter(torch.randn(1, 5, 6))
            self.scale = nn.Parameter(torch.randn(6))
            self.fc = nn.Linear(6, 3)

        def forward(self, x):          # (N, 4, 6)
            t = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
            return self.fc((t * self.scale).mean(1))
    net = compare(Tokens(), (4, 6))
    assert kinds(net).count("constant") == 3 and "reduce_mean" in kinds(net)


@pytest.mark.parametrize("padding,mode", [(0, "zeros"), (2, "zeros"), ("same", "zeros"),
                                          ("valid", "zeros"), (1, "reflect"),
                                          (2, "replicate"), ("same", "reflect")])
def test_conv1d(padding, mode):
    k = 4 if padding == "same" else 3  # an even kernel: 'same' pads 1 before, 2 after
    model = nn.Sequential(nn.Conv1d(3, 6, k, padding=padding, padding_mode=mode),
                          nn.ReLU(), nn.Conv1d(6, 4, 3, stride=2, groups=2, dilation=2))
    L = 16
    with torch.no_grad():
        out = model(torch.zeros(1, 3, L)).shape[-1]
    full = nn.Sequential(*model, nn.Flatten(), nn.Linear(4 * out, 5))
    net = compare(full, (3, L))
    assert kinds(net).count("conv1d") == 2
    assert ("pad" in kinds(net)) == (mode != "zeros" or padding == "same")


@pytest.mark.parametrize("padding,mode", [("same", "zeros"), (1, "reflect"), (2, "replicate"),
                                          ("same", "reflect")])
def test_conv2d_same_reflect_and_replicate_padding(padding, mode):
    conv = nn.Conv2d(2, 3, (4, 3) if padding == "same" else 3, padding=padding,
                     padding_mode=mode)
    with torch.no_grad():
        out = conv(torch.zeros(1, 2, 7, 6)).shape
    model = nn.Sequential(conv, nn.Flatten(), nn.Linear(out[1] * out[2] * out[3], 4))
    compare(model, (2, 7, 6))


def test_functional_pad():
    def fn(s, x):
        y = F.pad(x, (1, 2, 0, 1), mode="reflect")
        y = F.pad(y, (2, 0), value=0.5)
        y = F.pad(y, (1, 1, 1, 1), mode="replicate")
        return s.fc(y.flatten(1))
    compare(Lambda(fn, fc=nn.Linear(2 * 8 * 12, 3)), (2, 5, 5))


@pytest.mark.parametrize("out", [(2, 2), (3, 5), 4, (None, 2), (7, 1)])
def test_adaptive_average_pooling_to_any_size(out):
    pool = nn.AdaptiveAvgPool2d(out)
    with torch.no_grad():
        size = pool(torch.zeros(1, 3, 7, 9)).numel()
    net = compare(nn.Sequential(pool, nn.Flatten(), nn.Linear(size, 4)), (3, 7, 9))
    assert "adaptive_avgpool2d" in kinds(net)


def test_embedding_lookup():
    class Emb(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(11, 4)
            self.fc = nn.Linear(6 * 4, 3)

        def forward(self, x):          # x: (N, 6) token ids, as floats, in [0, 11)
            return self.fc(self.emb(x.long()).flatten(1))

    torch.manual_seed(0)
    model = Emb().eval()
    ids = torch.randint(0, 11, (32, 6)).float()
    with torch.no_grad():
        ref = model(ids).numpy()
    net = pcmsim.from_torch(model, (6,))
    ours = pcmsim.fp32_logits(net, ids.numpy())
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-5)
    assert "embedding" in kinds(net)
    with pytest.raises(ValueError, match="not an index"):
        pcmsim.fp32_logits(net, np.full((1, 6), 11.0, np.float32))
    with pytest.raises(ValueError, match="not an index"):
        pcmsim.fp32_logits(net, np.full((1, 6), 0.5, np.float32))


def test_mixing_samples_is_refused():
    with pytest.raises(ValueError, match="batch"):
        pcmsim.from_torch(Lambda(lambda s, x: s.fc(F.softmax(x, dim=0).flatten(1)),
                                 fc=nn.Linear(4, 2)), (1, 2, 2))
    with pytest.raises(ValueError, match="batch"):
        pcmsim.from_torch(Lambda(lambda s, x: s.fc(x.transpose(0, 1).flatten(1)),
                                 fc=nn.Linear(4, 2)), (1, 2, 2))


def test_new_kinds_survive_the_model_file(tmp_path):
    class Mixed(nn.Module):
        def __init__(self):
            super().__init__()
            self.c = nn.Conv1d(2, 4, 3, padding="same", padding_mode="reflect")
            self.ln = nn.LayerNorm(8)
            self.pos = nn.Parameter(torch.randn(1, 4, 8))
            self.pool = nn.AdaptiveAvgPool2d((2, 3))
            self.fc = nn.Linear(8 + 4 * 6, 3)

        def forward(self, x):          # (N, 2, 8)
            y = self.ln(self.c(x) + self.pos) * 0.5
            a = (y @ y.transpose(1, 2)).softmax(-1) @ y          # (N, 4, 8)
            p = self.pool(a.unsqueeze(1).reshape(x.shape[0], 4, 4, 2)).flatten(1)
            return self.fc(torch.cat([a.mean(1), p], 1))
    net = compare(Mixed(), (2, 8))
    path = tmp_path / "mixed.h5"
    pcmsim.save_network(net, str(path))
    back = pcmsim.load_network(str(path))
    x = np.random.default_rng(1).standard_normal((8, 16)).astype(np.float32)
    np.testing.assert_array_equal(pcmsim.fp32_logits(back, x), pcmsim.fp32_logits(net, x))
    assert kinds(back) == kinds(net)


def test_zoo_vit_converts_exports_and_runs_ideally_on_the_chip(tmp_path):
    """The zoo's vision transformer (random weights; zoo/models.py): from_torch and the zoo's
    own HDF5 export both reproduce PyTorch, its Linear layers (QKV, projections, MLP) and the
    patch conv go onto tiles, attention stays digital, and an ideal analog chip (ideal devices,
    no converters, no noise) equals the FP32 path."""
    import sys
    import h5py
    from conftest import SOURCE_DIR
    sys.path.insert(0, str(SOURCE_DIR / "zoo"))
    import export
    import models

    torch.manual_seed(5)
    model = models.build("vit").eval()
    with torch.no_grad():
        model.pos.normal_(0, 0.5)
    net = compare(model, (1, 28, 28), n=32)
    path = tmp_path / "vit.h5"
    with h5py.File(path, "w") as f:
        f.attrs.update(format="pcmsim-model", format_version=1, name="vit",
                       input_shape=[1, 28, 28], num_classes=10, input_mean=[0.0],
                       input_std=[1.0])
        export.write_layers(model, f.create_group("layers"))
    exported = pcmsim.load_network(str(path))
    x = np.random.default_rng(2).standard_normal((32, 784)).astype(np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(x.reshape(32, 1, 28, 28))).numpy()
    fp32 = pcmsim.fp32_logits(exported, x)
    np.testing.assert_allclose(fp32, ref, rtol=0, atol=1e-4 * np.abs(ref).max())
    matrices = [m.name for m in exported.layer_matrices()]
    assert matrices[0] == "patch" and matrices[-1] == "head" and len(matrices) == 2 + 2 * 6
    assert kinds(exported).count("matmul") == 4  # q·kᵀ and softmax·v per block: digital
    assert len(net.layer_matrices()) == len(matrices)

    ideal = pcmsim.SimulationConfig(seed=3, gdc=False)
    ideal.device.model = "ideal"
    ideal.io = pcmsim.IoParams(p_in=0, p_out=0, out_noise=0.0, in_noise=0.0,
                               out_bound=float("inf"))
    for rows, cols in [(256, 256), (49, 20)]:  # 49 x 20 tiles split every linear layer
        cfg = ideal.copy()
        cfg.chip.tile_rows, cfg.chip.tile_cols = rows, cols
        chip = pcmsim.AnalogChip(exported, cfg)
        chip.set_time(31536000.0)  # the ideal device does not drift
        out = chip.logits(x)
        # float32 GEMMs in another order and the exact-in-theory scaling: a few ulps per layer.
        np.testing.assert_allclose(out, fp32, rtol=0, atol=1e-5 * np.abs(fp32).max())
        assert np.array_equal(out.argmax(1), fp32.argmax(1))
