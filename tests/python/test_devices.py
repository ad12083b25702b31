"""Device models from Python: the same numbers as `pcmsim device`, program once / snapshot many,
and the physics limits (ideal model, all noise scales 0)."""
import numpy as np
import pytest

import pcmsim

from conftest import run_cli


@pytest.mark.parametrize("model,extra", [("pcm", []), ("state_independent", [])])
def test_device_report_equals_the_cli(model, extra):
    # Same configuration and seed: the Monte Carlo is bit-identical (draws by device index), so
    # the CSV text must be identical, not just close.
    cli = run_cli("device", "--model", model, "--format", "csv", "--samples", "3000",
                  "--seed", "11", "--g-target", "0,2.5,12.5,25", "--t-inference", "0,60,86400",
                  *extra)
    config = pcmsim.DeviceReportConfig(g_targets=[0.0, 2.5e-6, 12.5e-6, 25e-6],
                                       t_inference=[0.0, 60.0, 86400.0], samples=3000, seed=11)
    rows = pcmsim.device_report_rows(model, config)
    assert pcmsim.device_report_csv(rows) == cli
    table = pcmsim.device_report(model, g_target_uS=[0, 2.5, 12.5, 25],
                                 t_inference=[0, 60, 86400], samples=3000, seed=11)
    lines = [line.split(",") for line in cli.strip().splitlines()]
    header, body = lines[0], lines[1:]
    assert list(table.keys()) == header
    for j, col in enumerate(header[1:], start=1):
        np.testing.assert_allclose(np.asarray(table[col], dtype=float),
                                   [float(r[j]) for r in body], rtol=1e-6)


def test_pcm_program_once_read_many():
    model = pcmsim.make_device_model(pcmsim.DeviceSpec(model="pcm"))
    assert model.name == "pcm" and model.g_max == pytest.approx(25e-6)
    g_t = np.full((50, 40), 12.5e-6, np.float32)
    state = model.program(g_t, key=3)
    assert state.g_prog.shape == (50, 40) and state.nu.shape == (50, 40)
    np.testing.assert_array_equal(model.read(state, 0.0, key=9), state.g_prog)  # t = 0: g_prog
    a = model.read(state, 86400.0, key=1)
    b = model.read(state, 86400.0, key=1)
    c = model.read(state, 86400.0, key=2)
    np.testing.assert_array_equal(a, b)  # same key, same bits
    assert not np.array_equal(a, c)      # a new key is a fresh read-noise draw
    # One day of drift lowers the mean conductance: (t/t0)^-nu with nu ~ 0.05 at x = 0.5 gives
    # ~0.66; 2000 devices put the sample mean within a few % of it.
    ratio = a.mean() / state.g_prog.mean()
    assert 0.5 < ratio < 0.8
    # Reprogramming with the same key reproduces the state.
    np.testing.assert_array_equal(model.program(g_t, key=3).g_prog, state.g_prog)


def test_zero_noise_scales_give_exactly_the_targets():
    spec = pcmsim.DeviceSpec(model="pcm", pcm=pcmsim.PcmParams(prog_noise_scale=0, drift_scale=0,
                                                               read_noise_scale=0))
    model = pcmsim.make_device_model(spec)
    g_t = np.linspace(0, 25e-6, 101, dtype=np.float32)
    state = model.program(g_t)
    np.testing.assert_array_equal(state.g_prog, g_t)
    np.testing.assert_array_equal(model.read(state, 3.15e7, key=5), g_t)


def test_program_weights_and_effective_weights(rng):
    w = rng.standard_normal((30, 20)).astype(np.float32)
    prog = pcmsim.program_weights(w, model="ideal")
    assert prog.g_prog.shape == (1, 2, 30, 20)
    back = pcmsim.effective_weights(prog.at_time(86400.0, key=1))
    np.testing.assert_allclose(back, w, rtol=1e-5, atol=1e-6 * np.abs(w).max())
    # PCM: programming noise perturbs the weights by a few % of max|W|; drift shrinks them.
    prog = pcmsim.program_weights(w, model="pcm", key=4)
    w0 = pcmsim.effective_weights(prog.at_time(0.0))
    w_year = pcmsim.effective_weights(prog.at_time(3.15e7, key=2))
    err = np.abs(w0 - w).mean() / np.abs(w).max()
    assert 0.005 < err < 0.1
    assert np.abs(w_year).mean() < np.abs(w0).mean()
    # Multi-pair cells keep the read-back exact for the ideal device.
    cell = pcmsim.UnitCellSpec(kind="multi_pair", num_pairs=2)
    block = pcmsim.weights_to_targets(w, cell)
    assert len(block.planes) == 2
    np.testing.assert_allclose(pcmsim.effective_weights(block), w, rtol=1e-5, atol=1e-6)
