"""pcmsim.crossbar_currents / crossbar_effective_weights against ngspice and their limits.

ngspice (Debian's, scripts/install-deps.sh test) solves the same circuit (docs/ir-drop.md) from
a netlist written by spice_crossbar.py. Its reordering is slow for large nodal matrices: the
64 x 64 case costs ~9 s of CPU alone, so there is one of it."""
import pathlib
import sys

import numpy as np
import pytest

import pcmsim

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import spice_crossbar  # noqa: E402


# (m, n, r_row, r_col, r_driver, r_sense); None = drawn log-uniformly in [0.1, 10] ohm.
SPICE_CASES = [
    (1, 1, 0.1, 10.0, 0.0, 0.0),
    (4, 7, 10.0, 0.1, 0.0, 0.0),
    (16, 16, None, None, 50.0, 20.0),
    (24, 40, None, None, 0.0, 0.0),
    (64, 64, None, None, 0.0, 0.0),
]


@pytest.mark.parametrize("case", SPICE_CASES, ids=lambda c: f"{c[0]}x{c[1]}")
def test_currents_match_ngspice(case):
    m, n, r_row, r_col, r_driver, r_sense = case
    rng = np.random.default_rng(m * 1000 + n)
    r_row = r_row if r_row is not None else float(10 ** rng.uniform(-1, 1))
    r_col = r_col if r_col is not None else float(10 ** rng.uniform(-1, 1))
    G = rng.uniform(0.1e-6, 25e-6, (m, n))
    # Positive read voltages: every current is positive and far from 0, so the error can be
    # relative per element.
    v = rng.uniform(0.05, 0.3, m)
    want = spice_crossbar.ngspice_currents(G, v, r_row, r_col, r_driver, r_sense)
    r = dict(r_row=r_row, r_col=r_col, r_driver=r_driver, r_sense=r_sense)
    direct = pcmsim.crossbar_currents(G, v[None, :], **r)[0]
    via_w = v @ pcmsim.crossbar_effective_weights(G, **r)
    eigen = pcmsim.crossbar_currents(G, v[None, :], solver="eigen", **r)[0]
    cholmod = v @ pcmsim.crossbar_effective_weights(G, solver="cholmod", **r)
    for got in (direct, via_w, eigen, cholmod):
        assert np.max(np.abs(got / want - 1)) <= 1e-6
    # The wires matter at these sizes: the ideal product is off by more than the tolerance.
    assert np.max(np.abs((v @ G) / want - 1)) > 1e-5


def test_zero_resistance_is_the_ideal_product(rng):
    G = rng.uniform(0, 25e-6, (12, 9))
    V = rng.uniform(-0.2, 0.2, (5, 12))
    np.testing.assert_array_equal(pcmsim.crossbar_effective_weights(G, 0.0, 0.0), G)
    # Eigen's and NumPy's float64 products may sum in another order: equal to rounding.
    np.testing.assert_allclose(pcmsim.crossbar_currents(G, V, 0.0, 0.0), V @ G, rtol=1e-13,
                               atol=1e-13 * np.abs(V @ G).max())


def test_float32_is_accepted_and_results_are_float64(rng):
    G = rng.uniform(0, 25e-6, (8, 6))
    V = rng.uniform(0, 0.2, (3, 8))
    w64 = pcmsim.crossbar_effective_weights(G.astype(np.float32).astype(np.float64), 1.0, 1.0)
    w32 = pcmsim.crossbar_effective_weights(G.astype(np.float32), 1.0, 1.0)
    assert w32.dtype == np.float64 and w32.shape == (8, 6)
    np.testing.assert_array_equal(w32, w64)
    i = pcmsim.crossbar_currents(G, V.astype(np.float32), 1.0, 1.0)
    assert i.dtype == np.float64 and i.shape == (3, 6)
    np.testing.assert_allclose(i, V.astype(np.float32) @ pcmsim.crossbar_effective_weights(
        G, 1.0, 1.0), rtol=1e-12)


def test_bad_input_names_the_parameter(rng):
    G = rng.uniform(0, 25e-6, (4, 3))
    with pytest.raises(ValueError, match=r"r_row = -1"):
        pcmsim.crossbar_effective_weights(G, -1.0, 1.0)
    with pytest.raises(ValueError, match=r"r_col = nan"):
        pcmsim.crossbar_effective_weights(G, 1.0, float("nan"))
    with pytest.raises(ValueError, match=r"r_sense = -3"):
        pcmsim.crossbar_currents(G, np.zeros((1, 4)), 1.0, 1.0, r_sense=-3.0)
    bad = G.copy()
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match=r"G\[1, 2\] = nan"):
        pcmsim.crossbar_effective_weights(bad, 1.0, 1.0)
    with pytest.raises(ValueError, match=r"V: 2 x 3 does not match G: 4 x 3"):
        pcmsim.crossbar_currents(G, np.zeros((2, 3)), 1.0, 1.0)
    with pytest.raises(ValueError, match=r"G: shape \(12,\), expected a 2-D array"):
        pcmsim.crossbar_effective_weights(G.ravel(), 1.0, 1.0)
    with pytest.raises(TypeError, match=r"G: dtype complex128"):
        pcmsim.crossbar_effective_weights(G.astype(complex), 1.0, 1.0)
    with pytest.raises(ValueError, match=r"solver = 'lu'"):
        pcmsim.crossbar_effective_weights(G, 1.0, 1.0, solver="lu")


def test_ir_drop_settings_are_part_of_the_simulation_config():
    cfg = pcmsim.SimulationConfig()
    assert cfg.ir_drop == pcmsim.IrDropParams()
    cfg.ir_drop.r_row = 1.5
    assert cfg.ir_drop.r_row == 1.5
    with pytest.raises(ValueError, match=r"r_col = -1"):
        pcmsim.IrDropParams(r_col=-1.0).validate()
