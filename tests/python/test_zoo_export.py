"""The model zoo's files (zoo/*.h5) and its exporter, checked with NumPy only.

- every shipped model file has the docs/formats.md root attributes and a reference group;
- the NumPy forward pass from the file reproduces PyTorch's recorded logits/predictions;
- the exporter writes a graph (residual adds, 1x1 shortcuts, pools) that computes what the
  PyTorch module computes (random weights, so this does not depend on the trained files);
- the IDX reader rejects truncated files.
"""
import gzip
import os
import struct
import sys

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ZOO = os.path.join(ROOT, "zoo")
sys.path.insert(0, ZOO)
import data  # noqa: E402
import numpy_forward  # noqa: E402

MODELS = ["mlp", "mlp_hwa", "lenet5", "lenet5_hwa", "lenet5_hwa_p4", "resnet", "resnet_hwa",
          "resnet_hwa_p8", "resnet_hwa_p4"]
HAVE_DATA = os.path.exists(os.path.join(data.DEFAULT_DIR, data.FILES["test"][0]))


def _path(name):
    p = os.path.join(ZOO, name + ".h5")
    if not os.path.exists(p):
        pytest.skip(f"{p} not shipped yet")
    return p


@pytest.mark.parametrize("name", MODELS)
def test_model_file_attributes(name):
    with h5py.File(_path(name), "r") as f:
        assert f.attrs["format"] == "pcmsim-model"
        assert int(f.attrs["format_version"]) == 1
        assert f.attrs["name"] == name
        assert list(f.attrs["input_shape"]) == [1, 28, 28]
        assert int(f.attrs["num_classes"]) == 10
        assert 0.2 < float(f.attrs["input_mean"][0]) < 0.4 and float(f.attrs["input_std"][0]) > 0
        keys = list(f["layers"].keys())
        assert [int(k.split("_", 1)[0]) for k in keys] == list(range(len(keys)))
        for k in keys:
            g = f["layers"][k]
            for d in g.values():
                assert d.dtype == np.float32 and np.all(np.isfinite(d[...]))
        r = f["reference"]
        n = int(r.attrs["num_images"])
        assert n == 10000 and r["predictions"].shape == (n,) and r["logits"].shape == (n, 10)
        assert np.array_equal(r["predictions"][...], r["logits"][...].argmax(1))
        assert 0.8 < float(r.attrs["accuracy"]) <= 1.0
        assert bool(f.attrs["hw_aware"]) == ("_hwa" in name)
        if name[-3:] in ("_p4", "_p8"):  # trained through pcmsim.torch with p-bit converters
            assert f.attrs["hw_aware_kind"] == "pcmsim"
            assert int(f.attrs["hw_aware_p_in"]) == int(f.attrs["hw_aware_p_out"]) == int(name[-1])


@pytest.mark.skipif(not HAVE_DATA, reason="Fashion-MNIST IDX files not installed")
@pytest.mark.parametrize("name", MODELS)
def test_numpy_forward_reproduces_reference(name):
    path = _path(name)
    net = numpy_forward.load(path)
    img, lbl = data.load_split("test")
    n = 500
    x = data.to_float(img[:n], float(net["mean"][0]), float(net["std"][0]))
    logits = numpy_forward.predict_logits(net, x)
    with h5py.File(path, "r") as f:
        ref_logits = f["reference/logits"][:n]
        ref_pred = f["reference/predictions"][:n]
        ref_margin = f["reference/margin"][:n]
        acc = float(f["reference"].attrs["accuracy"])
        all_pred = f["reference/predictions"][...]
    # float32, different summation order: logits agree to ~1e-5 relative.
    assert np.abs(logits - ref_logits).max() < 1e-3 * max(1.0, np.abs(ref_logits).max())
    differ = logits.argmax(1) != ref_pred
    assert np.all(ref_margin[differ] < 1e-4)
    assert acc == pytest.approx(float((all_pred == lbl).mean()), abs=1e-9)


def test_exported_graph_matches_torch(tmp_path):
    torch = pytest.importorskip("torch")
    import export
    import models
    torch.manual_seed(0)
    for name in ["mlp", "lenet5", "resnet"]:
        m = models.build(name)
        # Non-trivial BN statistics so that a mis-wired BN or shortcut would show.
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.5, 0.5)
                mod.running_var.uniform_(0.5, 2.0)
                mod.weight.data.uniform_(0.5, 1.5)
                mod.bias.data.uniform_(-0.2, 0.2)
        m.eval()
        path = str(tmp_path / f"{name}.h5")
        with h5py.File(path, "w") as f:
            f.attrs.update(format="pcmsim-model", format_version=1, name=name,
                           input_shape=[1, 28, 28], num_classes=10, input_mean=[0.0], input_std=[1.0])
            export.write_layers(m, f.create_group("layers"))
        x = np.random.default_rng(1).standard_normal((8, 1, 28, 28)).astype(np.float32)
        with torch.no_grad():
            ref = m(torch.from_numpy(x)).numpy()
        got = numpy_forward.forward(numpy_forward.load(path), x)
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())


def test_idx_reader_rejects_truncated(tmp_path):
    good = struct.pack(">HBBIII", 0, 8, 3, 2, 2, 2) + bytes(range(8))
    p = tmp_path / "ok-idx3-ubyte.gz"
    p.write_bytes(gzip.compress(good))
    assert data.read_idx(str(p)).shape == (2, 2, 2)
    bad = tmp_path / "bad-idx3-ubyte.gz"
    bad.write_bytes(gzip.compress(good[:-1]))
    with pytest.raises(ValueError, match="expected 8 data bytes"):
        data.read_idx(str(bad))
    wrong = tmp_path / "wrong-idx3-ubyte"
    wrong.write_bytes(struct.pack(">HBB", 0, 0x0D, 1) + struct.pack(">I", 1) + b"\0\0\0\0")
    with pytest.raises(ValueError, match="not an unsigned-byte IDX"):
        data.read_idx(str(wrong))
