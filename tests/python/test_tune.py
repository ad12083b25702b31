"""The mixed-precision search from Python (pcmsim.tune, TuneOptions, read_tune) and its plot."""
import numpy as np
import pytest

import pcmsim

from conftest import FASHION_MNIST, SOURCE_DIR, run_cli

ZOO_MLP_HWA = SOURCE_DIR / "zoo" / "mlp_hwa.h5"
needs_data = pytest.mark.skipif(not FASHION_MNIST.exists(), reason="Fashion-MNIST not installed")


def test_tune_options_are_settings():
    o = pcmsim.TuneOptions(budget=0.5, candidate_bits=[8, 4])
    assert o.budget == 0.5 and list(o.candidate_bits) == [8.0, 4.0]
    assert "validation_images" in o.to_dict()
    with pytest.raises(ValueError, match="budget"):
        pcmsim.TuneOptions(budget=float("nan")).validate()
    with pytest.raises(ValueError, match="candidate_bits"):
        pcmsim.TuneOptions(candidate_bits=[]).validate()


@needs_data
def test_tune_from_python_beats_uniform_8_within_budget():
    cost = pcmsim.CostParams(mvm_energy=0.0)
    r = pcmsim.tune(str(ZOO_MLP_HWA), "fashion-mnist:t10k", "fashion-mnist:t10k", limit=100,
                    validation_images=100, budget=4.0, candidate_bits=[8, 4],
                    uniform_bits=[8], trials=2, cost_params=cost,
                    config=pcmsim.SimulationConfig(seed=3))
    best = r.candidates[r.best]
    assert r.feasible
    assert best.drop_bound <= 4.0
    assert [p.label for p in r.test] == ["tuned", "uniform 8"]
    assert best.energy < r.test[1].energy
    assert r.layer_precision_option.startswith("--layer-precision fc1:")
    assert r.programmings == 2
    # The bound holds both standard errors; the binding's drop_statistics reproduces it.
    assert best.drop.se_images > 0 and best.digital_layers == []
    again = pcmsim.drop_statistics(best.accuracy, best.discordance, r.fp32_validation, 100)
    assert again.upper95 == pytest.approx(best.drop_bound)
    assert best.drop_bound > best.drop_mean


@needs_data
def test_read_tune_and_pareto_plot(tmp_path):
    out = tmp_path / "t.h5"
    run_cli("tune", "--model", ZOO_MLP_HWA, "--validation-data", "fashion-mnist:t10k",
            "--validation-images", 64, "--limit", 64, "--trials", 2, "--candidate-bits", "8,4",
            "--uniform-bits", "8,4", "--budget", 50, "--out", out)
    res = pcmsim.read_tune(out)
    assert res["run_options"].startswith("--layer-precision ")
    n = len(res["candidates"]["phase"])
    assert res["candidates"]["accuracy"].shape == (n, 2)
    assert res["candidates"]["discordance"].shape == (n, 2)
    assert np.all(res["candidates"]["drop_se_images"] > 0)
    assert set(res["test"]["label"]) == {"tuned", "uniform 8", "uniform 4"}
    assert len(res["pareto"]) >= 1
    from pcmsim import plot
    fig = plot.tune_pareto(res)
    ax = fig.axes[0]
    assert "energy" in ax.get_xlabel() and "µJ" in ax.get_xlabel()
    assert "accuracy" in ax.get_ylabel()
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("95 % CI" in t for t in labels)
    assert any("Pareto" in t for t in labels)
    # python -m pcmsim.plot recognises the file.
    from pcmsim import plot_results
    png = tmp_path / "t.png"
    assert plot_results.main([str(out), "-o", str(png)]) == 0
    assert png.stat().st_size > 0
