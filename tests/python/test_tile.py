"""Tiles and the digital unit on NumPy batches."""
import threading

import numpy as np

import pcmsim


def exact_io():
    return pcmsim.IoParams(p_in=0, p_out=0, out_noise=0.0, bound_management="off",
                           in_bound=float("inf"), out_bound=float("inf"))


def test_ideal_tile_without_noise_or_converters_is_the_float_product(rng):
    w = rng.standard_normal((64, 48)).astype(np.float32)
    x = rng.standard_normal((32, 64)).astype(np.float32)
    tile = pcmsim.Tile(pcmsim.weights_to_targets(w), exact_io())
    assert (tile.rows, tile.cols) == (64, 48)
    y = tile.matmul(x)
    assert y.shape == (32, 48) and y.dtype == np.float32
    ref = x.astype(np.float64) @ w.astype(np.float64)
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())


def test_forward_plus_accumulator_equals_matmul(rng):
    w = rng.standard_normal((40, 24)).astype(np.float32)
    x = rng.standard_normal((10, 40)).astype(np.float32)
    tile = pcmsim.Tile(pcmsim.weights_to_targets(w), pcmsim.IoParams(p_in=6, p_out=6))
    readout = tile.forward(x, key=7)
    assert len(readout.reads) == 1 and readout.reads[0].shape == (10, 24)
    acc = pcmsim.LayerAccumulator(pcmsim.DigitalParams())
    acc.begin(10, 24)
    acc.add(readout, 0, 1.0)
    np.testing.assert_array_equal(acc.finish(), tile.matmul(x, key=7))
    # 6-bit converters and output noise: close to, but not equal to, the float product.
    ref = x @ w
    y = tile.matmul(x, key=7)
    rel = np.abs(y - ref).mean() / np.abs(ref).mean()
    assert 1e-4 < rel < 0.2


def test_gdc_restores_deterministic_drift():
    # All devices drift by the same factor (nu fixed by zero noise), no read/output noise, ADC
    # off: GDC's alpha is exactly the inverse drift factor (core/gdc.h).
    rng = np.random.default_rng(5)
    w = rng.uniform(-1, 1, (32, 16)).astype(np.float32)
    io = pcmsim.IoParams(p_out=0, out_noise=0.0, out_bound=float("inf"))
    spec = pcmsim.DeviceSpec(model="state_independent")
    spec.state_independent.prog_noise_scale = 0
    spec.state_independent.read_noise_scale = 0
    spec.state_independent.nu_std = 0
    prog = pcmsim.program_weights(w, spec)
    tile = pcmsim.Tile(prog.at_time(0.0), io)
    ref = pcmsim.gdc_reference(tile)
    x = rng.uniform(-1, 1, (8, 32)).astype(np.float32)
    y0 = tile.matmul(x)
    tile.set_conductances(prog.at_time(86400.0))
    alpha = pcmsim.gdc_alpha(tile, ref).alpha
    drift = ((86400.0 + 20.0) / 20.0) ** -0.1
    np.testing.assert_allclose(alpha, 1.0 / drift, rtol=1e-4)
    np.testing.assert_allclose(tile.matmul(x, alpha=float(alpha[0])), y0, rtol=1e-3, atol=1e-3)


def test_long_calls_release_the_gil(rng):
    # While one thread runs a large tile forward, another Python thread keeps running.
    w = rng.standard_normal((512, 512)).astype(np.float32)
    x = rng.standard_normal((4096, 512)).astype(np.float32)
    tile = pcmsim.Tile(pcmsim.weights_to_targets(w), pcmsim.IoParams())
    ticks = []
    done = threading.Event()

    def count():
        while not done.is_set():
            ticks.append(1)
            done.wait(0.001)

    t = threading.Thread(target=count)
    t.start()
    try:
        for _ in range(3):
            tile.matmul(x)
    finally:
        done.set()
        t.join()
    assert len(ticks) > 3
