"""ONNX import (docs/onnx.md): models exported by PyTorch's own exporter give the same FP32
predictions in pcmsim as in PyTorch; broken files give clear errors. Skipped without PyTorch or
the onnx Python package (the C++ test tests/unit/nets/test_onnx_import.cpp needs neither)."""
import subprocess
import sys
import warnings

import numpy as np
import pytest

import pcmsim

from conftest import FASHION_MNIST, PCMSIM_BIN, SOURCE_DIR

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
import onnx.numpy_helper  # noqa: E402
nn = torch.nn
F = torch.nn.functional

if not pcmsim.onnx_available:
    pytest.skip("pcmsim built without ONNX support", allow_module_level=True)

sys.path.insert(0, str(SOURCE_DIR / "zoo"))
import onnx_export  # noqa: E402

from test_torch_ops import Lambda  # noqa: E402

# Images of the zoo comparison: the full 10k test set takes ~1 min for the three ResNets on the
# CI's 2 cores; the first 1000 keep this file within seconds (the full-set result is in
# docs/onnx.md, measured by `python3 tests/python/test_onnx_import.py --full`).
ZOO_IMAGES = 1000


def export(model, shape, path, opset, dynamic=True):
    model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, torch.zeros((1,) + tuple(shape)), str(path), opset_version=opset,
                          input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "n"}, "logits": {0: "n"}} if dynamic
                          else None)
    return path


def fashion_images(model_net, limit):
    data = pcmsim.load_dataset("fashion-mnist:t10k", limit)
    return pcmsim.normalized_images(data, model_net), np.asarray(data.labels)


ZOO = ["mlp", "lenet5", "resnet", "mlp_hwa", "lenet5_hwa", "resnet_hwa", "vit", "vit_hwa"]


@pytest.mark.skipif(not FASHION_MNIST.exists(), reason="Fashion-MNIST not installed")
@pytest.mark.parametrize("name", ZOO)
def test_zoo_model_exported_by_pytorch_predicts_as_pytorch(name, tmp_path):
    h5 = SOURCE_DIR / "zoo" / f"{name}.h5"
    if not h5.exists():
        pytest.skip(f"{h5} not trained yet")
    path = tmp_path / f"{name}.onnx"
    model = onnx_export.export(str(h5), str(path))
    net = pcmsim.import_onnx(str(path))
    native = pcmsim.load_network(str(h5))
    # The normalisation travelled in metadata_props.
    assert net.input_mean == pytest.approx(native.input_mean)
    assert net.input_std == pytest.approx(native.input_std)
    assert net.class_names == native.class_names
    assert "onnx" in net.converted_from and "opset 13" in net.converted_from
    assert net.name == native.name
    # Same matrices on the tiles as the native model.
    assert [(m.rows, m.cols, m.groups) for m in net.layer_matrices()] == \
        [(m.rows, m.cols, m.groups) for m in native.layer_matrices()]
    x, _ = fashion_images(net, ZOO_IMAGES)
    ours = pcmsim.fp32_logits(net, x)
    with torch.no_grad():
        ref = model(torch.from_numpy(x.reshape((-1, 1, 28, 28)))).numpy()
    # float32 summation order differs (im2col GEMM vs PyTorch's kernels): ~1e-6 relative.
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-4 * np.abs(ref).max())
    assert np.array_equal(ours.argmax(1), ref.argmax(1))


class Everything(nn.Module):
    """What PyTorch 1.13 exports awkwardly: reflect padding (a Pad fed by a shape subgraph),
    adaptive pooling (AveragePool), LayerNorm (decomposed below opset 17), GELU (Erf), attention
    (MatMul of two activations, Softmax), Linear on tokens (MatMul + Add), flatten/transpose
    through Shape/Gather/Concat/Reshape, concat, a class token and position embedding."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 4, 3, padding=1)
        self.ap = nn.AdaptiveAvgPool2d((4, 4))
        self.c2 = nn.Conv2d(4, 8, 3, padding=1, padding_mode="reflect")
        self.cls = nn.Parameter(torch.randn(1, 1, 8))
        self.pos = nn.Parameter(torch.randn(1, 17, 8) * 0.1)
        self.ln = nn.LayerNorm(8)
        self.q, self.k, self.v = nn.Linear(8, 8), nn.Linear(8, 8), nn.Linear(8, 8)
        self.mlp = nn.Sequential(nn.Linear(8, 16), nn.GELU(), nn.Linear(16, 8))
        self.fc = nn.Linear(8 + 8, 10)
        with torch.no_grad():
            self.ln.weight.uniform_(0.5, 1.5)
            self.ln.bias.uniform_(-0.2, 0.2)

    def forward(self, x):
        y = F.relu(self.c1(x))
        y = self.c2(self.ap(y))                                   # (N, 8, 4, 4)
        t = y.flatten(2).transpose(1, 2)                          # (N, 16, 8)
        t = torch.cat([self.cls.expand(x.shape[0], -1, -1), t], dim=1) + self.pos
        h = self.ln(t)
        a = (self.q(h) @ self.k(h).transpose(-2, -1)) * 8 ** -0.5
        t = t + torch.softmax(a, dim=-1) @ self.v(h)
        t = t + self.mlp(self.ln(t))
        feats = torch.cat([t.mean(1), y.mean((2, 3))], dim=1)
        return self.fc(feats)


@pytest.mark.parametrize("opset", [11, 13, 14, 17])
@pytest.mark.parametrize("dynamic", [False, True])
def test_pytorch_exports_of_every_operator(opset, dynamic, tmp_path):
    torch.manual_seed(opset)
    model = Everything().eval()
    if dynamic:  # PyTorch 1.13 cannot export adaptive pooling after dynamic shapes
        model.ap = nn.AvgPool2d(2)
    path = export(model, (1, 8, 8), tmp_path / "m.onnx", opset, dynamic)
    net = pcmsim.import_onnx(str(path))
    x = torch.randn(16, 1, 8, 8)
    with torch.no_grad():
        ref = model(x).numpy()
    ours = pcmsim.fp32_logits(net, x.numpy().reshape(16, -1))
    np.testing.assert_allclose(ours, ref, rtol=0, atol=2e-5 * np.abs(ref).max())
    kinds = [layer.kind for layer in net.layers]
    assert kinds.count("matmul") == 2 and "pad" in kinds and "concat" in kinds
    assert ("layernorm" in kinds) == (opset >= 17)
    assert [m.name for m in net.layer_matrices()][:2] == ["c1.Conv", "c2.Conv"]
    # Linear on tokens (MatMul + Add) keeps its bias inside the linear layer.
    linears = [layer for layer in net.layers if layer.kind == "linear"]
    assert len(linears) == 6 and all(layer.bias is not None for layer in linears)


def test_conv1d_gemm_transposes_and_normalisation_options(tmp_path):
    model = nn.Sequential(nn.Conv1d(2, 4, 3, padding=1), nn.ReLU(), nn.Flatten(),
                          nn.Linear(4 * 10, 6), nn.Hardswish(), nn.Linear(6, 3))
    path = export(model, (2, 10), tmp_path / "c.onnx", 13)
    m = onnx.load(str(path))
    # Gemm with transB = 0 (the weight stored [in, out]) and alpha, beta != 1.
    gemm = [n for n in m.graph.node if n.op_type == "Gemm"][-1]
    init = {t.name: t for t in m.graph.initializer}
    w = onnx.numpy_helper.to_array(init[gemm.input[1]])
    init[gemm.input[1]].CopyFrom(onnx.numpy_helper.from_array(w.T.copy() / 2, gemm.input[1]))
    b = onnx.numpy_helper.to_array(init[gemm.input[2]])
    init[gemm.input[2]].CopyFrom(onnx.numpy_helper.from_array(b * 4, gemm.input[2]))
    del gemm.attribute[:]
    gemm.attribute.extend([onnx.helper.make_attribute("transB", 0),
                           onnx.helper.make_attribute("alpha", 2.0),
                           onnx.helper.make_attribute("beta", 0.25)])
    onnx.save(m, str(path))
    net = pcmsim.import_onnx(str(path), pcmsim.ModelInputOptions(input_mean=[0.5, 0.25],
                                                                 input_std=[2.0]))
    assert net.input_shape == [2, 1, 10] and net.input_mean == pytest.approx([0.5, 0.25])
    assert net.input_std == pytest.approx([2.0, 2.0])
    x = torch.randn(8, 2, 10)
    with torch.no_grad():
        ref = model(x).numpy()
    np.testing.assert_allclose(pcmsim.fp32_logits(net, x.numpy().reshape(8, -1)), ref,
                               rtol=0, atol=1e-5)
    assert [layer.kind for layer in net.layers][:2] == ["reshape", "conv1d"]
    with pytest.raises(ValueError, match="input_std"):
        pcmsim.import_onnx(str(path), pcmsim.ModelInputOptions(input_std=[0.0]))
    with pytest.raises(RuntimeError, match="input_mean has 3 values; the input has 2"):
        pcmsim.import_onnx(str(path), pcmsim.ModelInputOptions(input_mean=[1, 2, 3]))


# ---- broken files: clear errors, no crash


@pytest.fixture
def lenet_onnx(tmp_path):
    return onnx_export.export(str(SOURCE_DIR / "zoo" / "lenet5.h5"), str(tmp_path / "l.onnx")) \
        and tmp_path / "l.onnx"


def test_malformed_and_truncated_files(lenet_onnx, tmp_path):
    data = lenet_onnx.read_bytes()
    bad = tmp_path / "bad.onnx"
    for cut in [0, 1, 7, 100, len(data) // 3, len(data) // 2, len(data) - 1]:
        bad.write_bytes(data[:cut])
        with pytest.raises(RuntimeError, match=r"import_onnx\] .*bad.onnx: "):
            pcmsim.import_onnx(str(bad))
    rng = np.random.default_rng(0)
    for trial in range(30):  # random bytes, and a real file with bytes overwritten
        if trial < 10:
            blob = rng.integers(0, 256, 200 + 50 * trial, dtype=np.uint8).tobytes()
        else:
            arr = np.frombuffer(data, np.uint8).copy()
            idx = rng.integers(0, len(arr), 4)
            arr[idx] = rng.integers(0, 256, 4, dtype=np.uint8)
            blob = arr.tobytes()
        bad.write_bytes(blob)
        try:
            pcmsim.import_onnx(str(bad))  # a flipped weight byte may still be a valid model
        except RuntimeError as e:
            assert "bad.onnx" in str(e)
    with pytest.raises(RuntimeError, match="cannot open"):
        pcmsim.import_onnx(str(tmp_path / "missing.onnx"))


@pytest.mark.parametrize("opset", [7, 18])
def test_wrong_opset(lenet_onnx, opset):
    m = onnx.load(str(lenet_onnx))
    m.opset_import[0].version = opset
    onnx.save(m, str(lenet_onnx))
    with pytest.raises(RuntimeError, match=f"opset {opset} is not supported.*opsets 9 to 17"):
        pcmsim.import_onnx(str(lenet_onnx))


def test_every_unsupported_operator_is_named_with_its_node(tmp_path):
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Upsample(scale_factor=2), nn.Softplus(),
                          nn.Flatten(), nn.Linear(2 * 12 * 12, 3))
    path = export(model, (1, 8, 8), tmp_path / "u.onnx", 13)
    with pytest.raises(RuntimeError) as info:
        pcmsim.import_onnx(str(path))
    text = str(info.value)
    assert "2 unsupported operators" in text
    assert "Resize (node '/1/Resize')" in text and "Softplus (node '/2/Softplus')" in text


def test_unsupported_combinations_name_the_node(tmp_path):
    path = export(Lambda(lambda s, x: s.fc(torch.softmax(x, 0).flatten(1)), fc=nn.Linear(4, 2)),
                  (1, 2, 2), tmp_path / "b.onnx", 13)
    with pytest.raises(RuntimeError, match=r"node '/Softmax' \(Softmax\): axis = 0: the batch"):
        pcmsim.import_onnx(str(path))


def test_cli_convert_run_and_map(lenet_onnx, tmp_path):
    if not PCMSIM_BIN.exists():
        pytest.skip("pcmsim not built")
    out = tmp_path / "l.h5"
    proc = subprocess.run([str(PCMSIM_BIN), "convert", str(lenet_onnx), str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    net = pcmsim.load_network(str(out))
    assert net.converted_from.startswith("onnx: l.onnx (pytorch")
    native = pcmsim.load_network(str(SOURCE_DIR / "zoo" / "lenet5.h5"))
    x = np.random.default_rng(0).standard_normal((8, 784)).astype(np.float32)
    np.testing.assert_allclose(pcmsim.fp32_logits(net, x), pcmsim.fp32_logits(native, x),
                               rtol=0, atol=1e-4)
    proc = subprocess.run([str(PCMSIM_BIN), "map", "--model", str(lenet_onnx)],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and "conv1.Conv" in proc.stdout, proc.stderr
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(lenet_onnx.read_bytes()[:500])
    for args in (["convert", str(bad), str(tmp_path / "x.h5")], ["map", "--model", str(bad)],
                 ["convert", str(lenet_onnx), str(tmp_path / "nodir" / "x.h5")],
                 ["convert", str(lenet_onnx)]):
        proc = subprocess.run([str(PCMSIM_BIN), *args], capture_output=True, text=True)
        assert proc.returncode == 2 and "error" in proc.stderr, (args, proc.stderr)
    assert not (tmp_path / "x.h5").exists()


def full_set():
    """The whole 10k test set for every zoo model (the number in docs/onnx.md)."""
    import tempfile
    for name in ZOO:
        if not (SOURCE_DIR / "zoo" / f"{name}.h5").exists():
            continue
        with tempfile.TemporaryDirectory() as d:
            path = f"{d}/{name}.onnx"
            model = onnx_export.export(str(SOURCE_DIR / "zoo" / f"{name}.h5"), path)
            net = pcmsim.import_onnx(path)
            x, labels = fashion_images(net, 0)
            ours = pcmsim.fp32_logits(net, x).argmax(1)
            with torch.no_grad():
                ref = model(torch.from_numpy(x.reshape((-1, 1, 28, 28)))).numpy().argmax(1)
            print(f"{name}: {len(x)} images, {int((ours != ref).sum())} predictions differ, "
                  f"accuracy pcmsim {np.mean(ours == labels):.4f} "
                  f"pytorch {np.mean(ref == labels):.4f}")


if __name__ == "__main__" and "--full" in sys.argv:
    full_set()
