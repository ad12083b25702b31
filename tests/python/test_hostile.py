"""Hostile input from Python (issue 10): every bad value is a clear error naming the parameter
and the value, never wrapped, truncated, passed through or counted as a miss; nothing is written
for a bad call; the same seed gives the same bytes and the same results for any batch size."""
import numpy as np
import pytest

import pcmsim


def small_net(rng):
    w1 = rng.standard_normal((8, 12)).astype(np.float32) / 3
    w2 = rng.standard_normal((3, 8)).astype(np.float32) / 3
    layers = [pcmsim.Layer(name="flatten", kind="flatten"),
              pcmsim.Layer(name="fc1", kind="linear", in_features=12, out_features=8,
                           weight=w1, activation="relu"),
              pcmsim.Layer(name="fc2", kind="linear", in_features=8, out_features=3, weight=w2)]
    return pcmsim.Network(name="small", input_shape=[1, 3, 4], num_classes=3, input_mean=[0.0],
                          input_std=[1.0], layers=layers)


def images(rng, n=10):
    return rng.standard_normal((n, 12)).astype(np.float32)


# (name, call, exception type, fragments of the message: the parameter and the value)
def bad_calls(net, x, tmp_path):
    nul_path = str(tmp_path / "model.h5") + "\0.txt"
    return [
        ("label out of range", lambda: pcmsim.accuracy(net, x, np.array([0] * 9 + [3])),
         ValueError, ["labels[9] = 3", "[0, 3)"]),
        ("negative label", lambda: pcmsim.accuracy(net, x, np.array([-1] + [0] * 9)),
         ValueError, ["labels[0] = -1"]),
        ("label above 2^32", lambda: pcmsim.accuracy(net, x, np.array([2**32 + 1] + [0] * 9)),
         ValueError, ["labels[0] = 4294967297"]),
        ("float labels", lambda: pcmsim.accuracy(net, x, np.zeros(10) + 0.5),
         TypeError, ["labels", "integer"]),
        ("too few labels", lambda: pcmsim.accuracy(net, x, np.zeros(9, dtype=int)),
         ValueError, ["9 labels for 10 images"]),
        ("limit above the data", lambda: pcmsim.accuracy(net, x, np.zeros(10, dtype=int),
                                                         limit=11),
         ValueError, ["limit = 11", "only 10"]),
        ("NaN image, fp32_logits", lambda: pcmsim.fp32_logits(net, np.where(
            np.arange(120).reshape(10, 12) == 17, np.float32("nan"), x)),
         ValueError, ["images", "sample 1", "value 5", "nan"]),
        ("Inf image, fp32_predict", lambda: pcmsim.fp32_predict(net, np.full_like(x, np.inf)),
         ValueError, ["images", "inf"]),
        ("NUL byte in a model path", lambda: pcmsim.save_network(net, nul_path),
         ValueError, ["NUL byte"]),
        ("NUL byte in a data path", lambda: pcmsim.load_dataset(str(tmp_path / "d.h5") + "\0x"),
         ValueError, ["NUL byte"]),
        ("NUL byte in an out path", lambda: pcmsim.evaluate(
            net, x, np.zeros(10, dtype=int), out=str(tmp_path / "r.h5") + "\0.h5"),
         ValueError, ["NUL byte"]),
        ("out is a device", lambda: pcmsim.evaluate(net, x, np.zeros(10, dtype=int),
                                                    out="/dev/null"),
         ValueError, ["/dev/null", "not a regular file"]),
        ("chip accuracy label out of range", lambda: pcmsim.AnalogChip(
            net, pcmsim.SimulationConfig(), 0).accuracy(x, np.array([5] * 10)),
         ValueError, ["labels[0] = 5"]),
        ("evaluate label out of range", lambda: pcmsim.evaluate(
            net, x, np.array([0] * 9 + [7]), trials=1, t_inference=[1.0]),
         ValueError, ["labels[9] = 7"]),
    ]


def test_bad_python_calls_are_clear_errors(rng, tmp_path):
    net, x = small_net(rng), images(rng)
    for name, call, kind, fragments in bad_calls(net, x, tmp_path):
        with pytest.raises(kind) as err:
            call()
        for f in fragments:
            assert f in str(err.value), f"{name}: {f!r} not in {err.value}"
    assert sorted(p.name for p in tmp_path.iterdir()) == [], "a bad call wrote a file"


def test_dataset_labels_are_not_wrapped(rng):
    data = pcmsim.Dataset()
    with pytest.raises(ValueError, match=r"labels\[1\] = 8589934592"):
        data.labels = np.array([0, 2**33])
    with pytest.raises(TypeError, match="integer"):
        data.labels = np.array([0.5, 1.0])


def test_same_bytes_twice_and_any_batch_size(rng, tmp_path):
    net, x = small_net(rng), images(rng, 60)
    y = pcmsim.fp32_predict(net, x)  # agreement with FP32: every moved prediction shows
    config = pcmsim.SimulationConfig()
    config.seed = 3
    config.io.out_noise = 0.3
    tables = []
    for run, batch in (("a", 7), ("b", 7), ("c", 60)):
        (tmp_path / run).mkdir()
        tables.append(pcmsim.evaluate(net, x, y, config, trials=2, t_inference=[1.0, 86400.0],
                                      batch_size=batch, out=tmp_path / run / "r.h5"))
    a, b = ((tmp_path / r / "r.h5").read_bytes() for r in ("a", "b"))
    assert a == b, "two identical evaluations wrote different .h5 bytes"
    for k in range(2):
        np.testing.assert_array_equal(np.asarray(tables[0][f"acc_trial_{k}"]),
                                      np.asarray(tables[2][f"acc_trial_{k}"]))
