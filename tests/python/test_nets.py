"""Networks from Python: build from NumPy, save/load, FP32 predictions, the simulated chip, and
an evaluation equal to `pcmsim run` for the same configuration and seed."""
import numpy as np
import pytest

import pcmsim

from conftest import FASHION_MNIST, ZOO_MLP, run_cli


def numpy_mlp(rng):
    w1 = rng.standard_normal((16, 12)).astype(np.float32) / 4
    b1 = rng.standard_normal(16).astype(np.float32)
    w2 = rng.standard_normal((3, 16)).astype(np.float32) / 4
    layers = [pcmsim.Layer(name="flatten", kind="flatten"),
              pcmsim.Layer(name="fc1", kind="linear", in_features=12, out_features=16,
                           weight=w1, bias=b1, activation="relu"),
              pcmsim.Layer(name="fc2", kind="linear", in_features=16, out_features=3, weight=w2)]
    net = pcmsim.Network(name="tiny", input_shape=[1, 3, 4], num_classes=3, input_mean=[0.0],
                         input_std=[1.0], class_names=["a", "b", "c"], layers=layers)
    return net, (w1, b1, w2)


def test_network_from_numpy_predicts_like_numpy(rng):
    net, (w1, b1, w2) = numpy_mlp(rng)
    net.validate()
    assert len(net) == 3 and net.input_size == 12 and net.parameter_count() == 16 * 12 + 16 + 48
    x = rng.standard_normal((20, 1, 3, 4)).astype(np.float32)
    ref = np.maximum(x.reshape(20, 12) @ w1.T + b1, 0) @ w2.T
    np.testing.assert_allclose(pcmsim.fp32_logits(net, x), ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(pcmsim.fp32_predict(net, x), ref.argmax(1))
    np.testing.assert_array_equal(net.layer("fc1").weight, w1)
    assert net.shapes()[1] == ([(12,)], (16,))
    # Readable reprs: shapes, not weight dumps.
    assert repr(net) == "Network(name='tiny', input_shape=(1, 3, 4), num_classes=3, layers=3)"
    assert repr(net.layers[1]) == ("Layer(name='fc1', kind='linear', activation='relu', "
                                   "in_features=12, out_features=16, weight=(16, 12))")


def test_save_and_load_round_trip(rng, tmp_path):
    net, _ = numpy_mlp(rng)
    path = tmp_path / "tiny.h5"
    pcmsim.save_network(net, str(path))
    back = pcmsim.load_network(str(path))
    assert back.source == str(path)
    back.source = ""
    assert back == net
    x = rng.standard_normal((5, 12)).astype(np.float32)
    np.testing.assert_array_equal(pcmsim.fp32_logits(back, x), pcmsim.fp32_logits(net, x))


@pytest.mark.skipif(not FASHION_MNIST.exists(), reason="Fashion-MNIST not installed")
def test_zoo_model_reproduces_its_pytorch_reference():
    net = pcmsim.load_network(str(ZOO_MLP))
    data = pcmsim.load_dataset("fashion-mnist:t10k", 500)
    assert len(data) == 500 and data.images.shape == (500, 784)
    x = pcmsim.normalized_images(data, net)
    pred = pcmsim.fp32_predict(net, x)
    ref = net.reference
    near_tie = ref["margin"][:500] < 1e-4
    assert np.all((pred == ref["predictions"][:500]) | near_tie)


@pytest.mark.skipif(not FASHION_MNIST.exists(), reason="Fashion-MNIST not installed")
def test_evaluation_equals_pcmsim_run(tmp_path):
    # Same model, data, configuration and seed through the C++ command and through Python.
    args = ["run", "--model", ZOO_MLP, "--limit", "300", "--t-inference", "1,86400",
            "--trials", "2", "--p-in", "6", "--p-out", "6", "--seed", "17", "--tile", "128x128",
            "--format", "csv", "--out", tmp_path / "run.h5"]
    cli = run_cli(*args).strip().splitlines()
    cfg = pcmsim.SimulationConfig(seed=17)
    cfg.io.p_in = 6
    cfg.io.p_out = 6
    cfg.chip.tile_rows = cfg.chip.tile_cols = 128
    table = pcmsim.evaluate(str(ZOO_MLP), "fashion-mnist:t10k", limit=300, config=cfg,
                            t_inference=[1, 86400], trials=2, model_name=None)
    # The same columns in the same order (the results CSV's), and the same values: settings
    # exactly, results to the CSV's 10 significant digits.
    import csv
    rows = list(csv.reader(cli))
    header = rows[0]
    assert header == list(table.keys())[:len(header)]
    n = len(table["acc_mean"])
    assert len(rows) == n + 1
    for i, row in enumerate(rows[1:]):
        for column, text in zip(header, row):
            ours = table[column][i]
            if isinstance(ours, (str, np.str_)):
                assert text == str(ours), column
            else:
                assert float(text) == pytest.approx(float(ours), rel=1e-9, abs=0), column
    # evaluate(out=...) writes the file `pcmsim run --out` writes: the same CSV view, byte for
    # byte, and a configuration that reads back equal.
    pcmsim.evaluate(str(ZOO_MLP), "fashion-mnist:t10k", limit=300, config=cfg,
                    t_inference=[1, 86400], trials=2, out=tmp_path / "py.h5")
    assert (tmp_path / "py.csv").read_text() == (tmp_path / "run.csv").read_text()
    back, options, source = pcmsim.read_run_config(str(tmp_path / "py.h5"))
    # Every setting reads back (the per-model copies a shared setting fans out to may differ
    # from a hand-built config's: only the chosen model's is a setting).
    assert pcmsim.setting_columns(back) == pcmsim.setting_columns(cfg)
    assert list(options.t_inference) == [1, 86400] and options.trials == 2
    assert source["limit"] == 300 and source["data"] == "fashion-mnist:t10k"
    with pytest.raises(ValueError, match="not a regular file"):
        pcmsim.evaluate(str(ZOO_MLP), limit=10, config=cfg, out=tmp_path)
    # Per-trial accuracies are there too and average to acc_mean.
    trials = np.stack([table["acc_trial_0"], table["acc_trial_1"]])
    np.testing.assert_allclose(trials.mean(0), table["acc_mean"], rtol=1e-12)
    assert np.all(table["acc_mean"] > 0.5) and np.all(table["fp32_acc"] > 0.8)


def _fmt(v):
    """The CLI's formatting: std::ostream with precision 6 (like %g)."""
    if isinstance(v, (str, np.str_)):
        return str(v)
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    return f"{float(v):.6g}"


def test_analog_chip_is_deterministic(rng):
    net = pcmsim.load_network(str(ZOO_MLP))
    x = rng.standard_normal((64, 784)).astype(np.float32)
    cfg = pcmsim.SimulationConfig(seed=3)
    chip = pcmsim.AnalogChip(net, cfg, trial=0)
    chip.set_time(3600.0)
    assert chip.time == 3600.0 and chip.plan.tiles_used > 0
    a = chip.logits(x, batch_size=32)
    # The tile noise is keyed by (batch start, row in batch) (nets/simulation.cpp), so the same
    # batch size gives the same bits; another batching is another noise draw.
    np.testing.assert_array_equal(chip.logits(x, batch_size=32), a)
    again = pcmsim.AnalogChip(net, cfg, trial=0)
    again.set_time(3600.0)
    np.testing.assert_array_equal(again.logits(x, batch_size=32), a)
    other = pcmsim.AnalogChip(net, cfg, trial=1)
    other.set_time(3600.0)
    assert not np.array_equal(other.logits(x, batch_size=32), a)
    fp32 = pcmsim.fp32_logits(net, x)
    assert np.mean(a.argmax(1) == fp32.argmax(1)) > 0.7
    alpha = chip.gdc_alpha
    assert len(alpha) == 3 and all(np.all(np.isfinite(s)) for layer in alpha for s in layer)


def test_pipeline_values_share_programming_and_snapshots(rng):
    net = pcmsim.load_network(str(ZOO_MLP))
    x = rng.standard_normal((48, 784)).astype(np.float32)
    cfg = pcmsim.SimulationConfig(seed=4)
    programmed = pcmsim.ProgrammedChip(net, cfg, trial=0)
    snapshot = programmed.at(86400.0)
    assert snapshot.t_inference == 86400.0
    converters = pcmsim.ConverterSetup(programmed)
    chip = pcmsim.AnalogChip.from_values(programmed, converters, snapshot)
    # The values give the bits of the convenience chip built from the same config.
    reference = pcmsim.AnalogChip(net, cfg, trial=0)
    reference.set_time(86400.0)
    np.testing.assert_array_equal(chip.logits(x), reference.logits(x))
    # Other converters on the same programming and snapshot: a different result, same chip.
    coarse = pcmsim.SimulationConfig(seed=4, io=pcmsim.IoParams(p_out=4))
    other = pcmsim.AnalogChip.from_values(programmed, pcmsim.ConverterSetup(programmed, coarse),
                                          snapshot)
    assert not np.array_equal(other.logits(x), chip.logits(x))
    # A programming setting cannot change without programming again; the error names it.
    reprogrammed = pcmsim.SimulationConfig(seed=5)
    with pytest.raises(ValueError, match="seed"):
        pcmsim.ConverterSetup(programmed, reprogrammed)
    with pytest.raises(ValueError, match="this ProgrammedChip"):
        pcmsim.AnalogChip.from_values(pcmsim.ProgrammedChip(net, cfg), converters, snapshot)


def test_calibrate_and_set_time_in_any_order(rng):
    net = pcmsim.load_network(str(ZOO_MLP))
    x = rng.standard_normal((32, 784)).astype(np.float32)
    cal = rng.standard_normal((64, 784)).astype(np.float32)
    cfg = pcmsim.SimulationConfig(seed=2, calibrate=True)
    first = pcmsim.AnalogChip(net, cfg)
    with pytest.raises(ValueError, match="calibrate"):
        first.logits(x)  # not calibrated yet: a clear error, not uncalibrated converters
    first.calibrate(cal)
    first.set_time(3600.0)
    second = pcmsim.AnalogChip(net, cfg)
    second.set_time(3600.0)
    second.calibrate(cal)
    np.testing.assert_array_equal(first.logits(x), second.logits(x))


def test_evaluate_with_arrays_and_progress(rng):
    net, _ = numpy_mlp(rng)
    x = rng.standard_normal((40, 12)).astype(np.float32)
    y = pcmsim.fp32_predict(net, x)
    calls = []
    table = pcmsim.evaluate(net, x, y, t_inference=[0.0, 60.0], trials=2,
                            progress=lambda done, total, what: calls.append((done, total)))
    assert table["fp32_acc"][0] == 1.0  # labels are the FP32 predictions
    assert list(table["t_inference"]) == [0.0, 60.0]
    assert calls and calls[-1][1] == 5  # 1 FP32 pass + 2 trials x 2 times
    with pytest.raises(ValueError, match="labels"):
        pcmsim.evaluate(net, x)

    def stop(done, total, what):
        raise KeyError("stop here")

    with pytest.raises(KeyError, match="stop here"):  # a callback's exception propagates
        pcmsim.evaluate(net, x, y, t_inference=[1.0], trials=1, progress=stop)
    with pytest.raises(TypeError, match="unknown keyword"):
        pcmsim.evaluate(net, x, y, trails=2)
    with pytest.raises(ValueError, match="labels"):
        pcmsim.evaluate_result(net, x, y[:3])


_THREADS_SCRIPT = """
import sys, numpy as np, pcmsim
net = pcmsim.load_network(sys.argv[1])
x = np.random.default_rng(0).standard_normal((96, 784)).astype(np.float32)
chip = pcmsim.AnalogChip(net, pcmsim.SimulationConfig(seed=5), trial=0)
chip.set_time(86400.0)
np.save(sys.argv[2], chip.logits(x, batch_size=48))
"""


def test_same_bits_for_any_thread_count(tmp_path):
    import os
    import subprocess
    import sys
    outs = []
    for threads in (1, 2):
        out = tmp_path / f"logits_{threads}.npy"
        env = dict(os.environ, OMP_NUM_THREADS=str(threads))
        proc = subprocess.run([sys.executable, "-c", _THREADS_SCRIPT, str(ZOO_MLP), str(out)],
                              capture_output=True, text=True, env=env)
        assert proc.returncode == 0, proc.stderr
        outs.append(np.load(out))
    np.testing.assert_array_equal(outs[0], outs[1])


def test_concat_tables(rng):
    net, _ = numpy_mlp(rng)
    x = rng.standard_normal((20, 12)).astype(np.float32)
    y = pcmsim.fp32_predict(net, x)
    tables = []
    for p in (4, 8):
        cfg = pcmsim.SimulationConfig(io=pcmsim.IoParams(p_in=p, p_out=p))
        tables.append(pcmsim.evaluate(net, x, y, cfg, t_inference=[1.0], trials=1))
    both = pcmsim.concat_tables(tables)
    assert list(both["p_in"]) == [4, 8] and len(both["acc_mean"]) == 2
