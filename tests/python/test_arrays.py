"""NumPy inputs: C-contiguous float32 arrays are used in place (no copy); wrong dtype, shape,
non-contiguous arrays and bad values raise clear Python exceptions, never a crash."""
import numpy as np
import pytest

import pcmsim

from conftest import DATA_DIR


def ideal_tile(w, **io):
    block = pcmsim.weights_to_targets(np.ascontiguousarray(w, dtype=np.float32))
    return pcmsim.Tile(block, pcmsim.IoParams(**io))


def test_c_contiguous_float32_input_is_not_copied(rng):
    x = rng.standard_normal((7, 5)).astype(np.float32)
    assert pcmsim._pcmsim._input_address(x) == x.ctypes.data
    images = rng.standard_normal((3, 1, 4, 4)).astype(np.float32)  # N x C x H x W: a view too
    assert pcmsim._pcmsim._input_address(images) == images.ctypes.data
    sub = x[2:5]  # a row slice of a C-contiguous array is still C-contiguous: no copy
    assert pcmsim._pcmsim._input_address(sub) == sub.ctypes.data


def test_out_argument_writes_into_the_passed_array(rng):
    x = rng.uniform(-1.5, 1.5, size=(4, 6)).astype(np.float32)
    expected = pcmsim.quantise(x.copy(), bits=4, bound=1.0)
    result = pcmsim.quantise(x, bits=4, bound=1.0, out=x)
    assert result is x  # the very same buffer, written in place
    np.testing.assert_array_equal(x, expected)
    step = 2.0 / (2 ** 4 - 2)
    assert np.all(np.abs(x) <= 1.0)
    np.testing.assert_allclose(x / step, np.round(x / step), atol=1e-5)


def test_wrong_dtype_is_a_type_error_saying_how_to_convert(rng):
    tile = ideal_tile(rng.standard_normal((5, 3)))
    x64 = rng.standard_normal((2, 5))
    with pytest.raises(TypeError, match=r"pcmsim.Tile.forward.*dtype float64, expected float32"):
        tile.forward(x64)
    with pytest.raises(TypeError, match="float32"):
        tile.matmul(x64.astype(np.int32))
    with pytest.raises(TypeError, match="NumPy float32 array"):
        tile.forward([[1.0] * 5])
    tile.matmul(pcmsim.as_float32(x64))  # the documented conversion works


def test_wrong_shape_is_a_value_error_naming_both_shapes(rng):
    tile = ideal_tile(rng.standard_normal((5, 3)))
    with pytest.raises(ValueError, match=r"shape \(2, 4\) has 4 values per row, expected 5"):
        tile.forward(np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match="expected a 2-D array"):
        tile.forward(np.zeros(5, np.float32))
    with pytest.raises(ValueError, match="expected a 2-D array"):
        tile.forward(np.zeros((1, 1, 5), np.float32))


def test_non_contiguous_array_is_a_value_error(rng):
    tile = ideal_tile(rng.standard_normal((5, 3)))
    x = np.zeros((5, 4), np.float32).T  # Fortran order
    with pytest.raises(ValueError, match="not C-contiguous"):
        tile.forward(x)
    with pytest.raises(ValueError, match="not C-contiguous"):
        tile.matmul(np.zeros((4, 10), np.float32)[:, ::2])


def test_non_finite_input_is_a_value_error(rng):
    tile = ideal_tile(rng.standard_normal((5, 3)))
    x = np.zeros((2, 5), np.float32)
    x[1, 3] = np.nan
    with pytest.raises(ValueError):
        tile.forward(x)


def test_bad_device_targets_and_weights_raise_value_errors():
    model = pcmsim.make_device_model("pcm")
    with pytest.raises(ValueError, match="g_target"):
        model.program(np.array([1e-6, 30e-6], np.float32))
    with pytest.raises(ValueError):
        model.program(np.array([np.nan], np.float32))
    with pytest.raises(ValueError):
        pcmsim.weights_to_targets(np.array([[1.0, np.inf]], np.float32))
    with pytest.raises(ValueError, match="known|unknown|pcm"):
        pcmsim.make_device_model("nonexistent-model")
    state = model.program(np.array([5e-6], np.float32))
    with pytest.raises(ValueError):
        model.read(state, -1.0)


def test_bad_files_raise_runtime_errors(tmp_path):
    with pytest.raises(RuntimeError, match="missing.h5"):
        pcmsim.load_network(str(tmp_path / "missing.h5"))
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes((DATA_DIR / "nets_torch_tiny.h5").read_bytes()[:2000])
    with pytest.raises(RuntimeError):
        pcmsim.load_network(str(truncated))
    with pytest.raises((RuntimeError, ValueError)):
        spec = pcmsim.DeviceSpec(model="tabulated")
        spec.tabulated.table_path = str(DATA_DIR / "device_table_truncated.csv")
        pcmsim.make_device_model(spec)


def test_network_input_errors(rng):
    net = pcmsim.load_network(str(DATA_DIR / "nets_torch_tiny.h5"))
    n = net.input_size
    with pytest.raises(ValueError, match=f"expected {n}"):
        pcmsim.fp32_logits(net, np.zeros((2, n + 1), np.float32))
    with pytest.raises(TypeError, match="float32"):
        pcmsim.fp32_logits(net, np.zeros((2, n)))
    with pytest.raises(ValueError, match="batch_size"):
        pcmsim.fp32_logits(net, np.zeros((2, n), np.float32), batch_size=0)
    layer = pcmsim.Layer(name="bad", kind="linear", in_features=3, out_features=2,
                         weight=np.zeros((3, 3)))
    broken = pcmsim.Network(name="b", input_shape=[1, 1, 3], num_classes=2, input_mean=[0.0],
                            input_std=[1.0], layers=[layer])
    with pytest.raises(ValueError, match="bad"):
        broken.validate()
    with pytest.raises(ValueError, match="kind"):
        pcmsim.Layer(kind="convolution")


def test_misuse_raises_instead_of_crashing(tmp_path):
    tile = pcmsim.Tile(pcmsim.weights_to_targets(np.ones((4, 3), np.float32)))
    with pytest.raises(ValueError, match="before begin"):
        pcmsim.LayerAccumulator().add(tile.forward(np.zeros((2, 4), np.float32)))
    with pytest.raises(IndexError):
        tile.group_weights(99)
    with pytest.raises(ValueError, match="one per column"):
        tile.set_output_bounds([1.0])
    with pytest.raises(ValueError, match="no planes"):
        pcmsim.Tile(pcmsim.ConductanceBlock([], 25e-6, np.ones(3)))
    net = pcmsim.Network(name="x", input_shape=[1, 1, 4], num_classes=2, input_mean=[0.0],
                         input_std=[1.0],
                         layers=[pcmsim.Layer(name="f", kind="flatten"),
                                 pcmsim.Layer(name="fc", kind="linear", in_features=4,
                                              out_features=2)])
    for call in (lambda: pcmsim.fp32_logits(net, np.zeros((2, 4), np.float32)),
                 lambda: pcmsim.AnalogChip(net),
                 lambda: pcmsim.save_network(net, str(tmp_path / "n.h5"))):
        with pytest.raises(ValueError, match="weight is missing"):
            call()
    with pytest.raises(ValueError, match="name is empty"):
        pcmsim.AnalogChip(pcmsim.Network())
    net.layers = [net.layers[0], pcmsim.Layer(name="fc", kind="linear", in_features=4,
                                              out_features=2, weight=np.ones((2, 4)))]
    with pytest.raises(RuntimeError, match="cannot create"):
        pcmsim.save_network(net, str(tmp_path / "missing" / "n.h5"))
