"""The cost model from Python and from `pcmsim map`/`run`: presets, the HERMES peak figures,
explicit options over a preset, the cost in results files and tables, bad input."""
import json
import subprocess

import numpy as np
import pytest

import pcmsim

from conftest import DATA_DIR, PCMSIM_BIN, SOURCE_DIR, ZOO_MLP, run_cli

RESNET = SOURCE_DIR / "zoo" / "resnet_hwa.h5"


def test_hermes_preset_reproduces_the_published_peak_in_map_json():
    out = json.loads(run_cli("map", "--model", RESNET, "--preset", "hermes", "--format", "json"))
    # Le Gallo et al. 2023, one-phase 8-bit: 63.1 TOPS, 9.76 TOPS/W, ~13 nJ and ~133 ns per MVM.
    assert out["tops"] == pytest.approx(63.1, rel=0.1)
    assert out["tops_per_w"] == pytest.approx(9.76, rel=0.1)
    assert out["mvm_energy_J"] == pytest.approx(13e-9, rel=0.1)
    assert out["mvm_time_s"] == pytest.approx(133e-9, rel=0.1)
    layers = out["cost_layers"]
    assert [l["name"] for l in layers] == [l["name"] for l in out["layers"]]
    assert out["energy_per_inference_J"] == pytest.approx(sum(l["energy_J"] for l in layers))
    assert out["latency_s"] == pytest.approx(sum(l["latency_s"] for l in layers))
    assert out["area_mm2"] > 0 and out["cost_constants"]["mvm_energy"] == 1.05e-8


def test_explicit_options_override_the_preset():
    base = json.loads(run_cli("map", "--model", ZOO_MLP, "--preset", "hermes", "--format",
                              "json"))
    half = json.loads(run_cli("map", "--model", ZOO_MLP, "--preset", "hermes", "--num-tiles",
                              "32", "--format", "json"))
    assert half["cores"] == 32 and base["cores"] == 64
    assert half["tops"] == pytest.approx(base["tops"] / 2)
    shared = json.loads(run_cli("map", "--model", ZOO_MLP, "--preset", "hermes",
                                "--adc-columns", "2", "--mvm-time", "0", "--format", "json"))
    # Halving the ADCs doubles the conversion time (5 ns -> 10 ns) on top of the 127 ns pulse.
    assert shared["mvm_time_s"] == pytest.approx(127e-9 + 10e-9)


def test_python_cost_model_equals_the_cli(tmp_path):
    net = pcmsim.load_network(str(ZOO_MLP))
    config, params = pcmsim.SimulationConfig(), pcmsim.CostParams()
    assert "num_tiles" in pcmsim.apply_preset("hermes", config)
    assert "mvm_energy" in pcmsim.apply_preset("hermes", params)
    report = pcmsim.network_cost(net, config, params)
    cli = json.loads(run_cli("map", "--model", ZOO_MLP, "--preset", "hermes", "--format", "json"))
    assert report.totals["energy_per_inference_J"] == pytest.approx(
        cli["energy_per_inference_J"], rel=1e-9)
    table = pcmsim.cost_table(report)
    assert list(table["layer"]) == [l["name"] for l in cli["cost_layers"]]
    assert np.allclose(np.asarray(table["energy_J"]), [l["energy_J"] for l in cli["cost_layers"]])
    # ADC energy law: 8-bit vs 4-bit ADCs, 2^4 = 16 times the conversion energy.
    config4 = config.copy()
    config4.io.p_out = 4
    adc8 = report.layer_columns()["energy_adc_J"]
    adc4 = pcmsim.network_cost(net, config4, params).layer_columns()["energy_adc_J"]
    assert np.allclose(adc8 / adc4, 16.0)
    # A cost file overrides single constants.
    f = tmp_path / "chip.cost"
    f.write_text("adc_fom = 1e-14  # better ADC\n")
    assert pcmsim.load_cost_params(str(f)).adc_fom == 1e-14
    f.write_text("adc_fom = 1e-14\nadc_fom = 2e-14\n")
    with pytest.raises(ValueError, match="given twice"):
        pcmsim.load_cost_params(str(f))
    with pytest.raises(ValueError, match="p_out = 0"):
        config4.io.p_out = 0
        pcmsim.network_cost(net, config4, params)
    with pytest.raises(ValueError, match="adc_fom"):
        pcmsim.CostParams(adc_fom=-1.0).validate()
    names = [p[0] for p in pcmsim.presets()]
    assert names == ["hermes", "ambrogio2023"]


def test_results_files_carry_the_cost(tmp_path):
    net = pcmsim.load_network(str(DATA_DIR / "nets_torch_tiny.h5"))
    data = str(DATA_DIR / "nets_torch_tiny_data.h5")
    out = tmp_path / "r.h5"
    table = pcmsim.evaluate(net, data, limit=20, trials=1, t_inference=[1.0], out=out)
    expected = pcmsim.network_cost(net, pcmsim.SimulationConfig(), pcmsim.CostParams())
    assert table["energy_per_inference_J"][0] == pytest.approx(expected.energy_per_inference)
    params, report = pcmsim.read_run_cost(str(out))
    assert params == pcmsim.CostParams() and report.totals == pytest.approx(expected.totals)
    lines = (tmp_path / "r.cost.csv").read_text().splitlines()
    assert lines[0].startswith("layer,digital,tiles,") and len(lines) == 1 + len(report.layer_columns()["layer"])
    header = (tmp_path / "r.csv").read_text().splitlines()[0].split(",")
    assert "energy_per_inference_J" in header and "area_mm2" in header
    # Ideal converters: no cost, NaN in the table, no /cost in the file.
    ideal = pcmsim.SimulationConfig()
    ideal.io.p_out = 0
    table = pcmsim.evaluate(net, data, config=ideal, limit=20, trials=1, t_inference=[1.0],
                            out=tmp_path / "i.h5")
    assert np.isnan(table["energy_per_inference_J"][0])
    assert pcmsim.read_run_cost(str(tmp_path / "i.h5"))[1] is None


def test_bad_preset_and_cost_options_are_bad_input(tmp_path):
    if not PCMSIM_BIN.exists():
        pytest.skip("pcmsim not built")
    for args, words in [(["--preset", "nope"], ["preset 'nope'", "hermes, ambrogio2023"]),
                        (["--adc-fom", "-1"], ["adc_fom"]),
                        (["--adc-columns", "0"], ["adc_columns = 0"]),
                        (["--cost-file", str(tmp_path / "missing")], ["cannot be read"])]:
        proc = subprocess.run([str(PCMSIM_BIN), "map", "--model", str(ZOO_MLP), *args],
                              capture_output=True, text=True)
        assert proc.returncode == 2, proc.stderr
        for w in words:
            assert w in proc.stderr, proc.stderr


def test_accuracy_vs_energy_plot():
    from pcmsim import plot
    # Two precisions x 3 trials, as concatenated evaluate() tables would give them.
    table = {"energy_per_inference_J": [2e-6, 2e-6, 2e-6, 8e-6, 8e-6, 8e-6],
             "p_out": [4, 4, 4, 8, 8, 8], "t_inference": [86400.0] * 6,
             "accuracy": [0.80, 0.82, 0.81, 0.88, 0.89, 0.90], "fp32_acc": [0.91] * 6}
    fig = plot.accuracy_vs_energy(table, annotate="p_out")
    ax = fig.axes[0]
    assert ax.get_xlabel() == "energy per inference (µJ)" and ax.get_xscale() == "linear"
    wide = dict(table, energy_per_inference_J=[1e-7] * 3 + [8e-6] * 3)
    assert plot.accuracy_vs_energy(wide).axes[0].get_xscale() == "log"  # spans > 1 decade
    line = ax.lines[0]
    assert np.allclose(line.get_xdata(), [2.0, 8.0]) and np.allclose(line.get_ydata(), [81, 89])
    assert "95 % CI" in " ".join(t.get_text() for t in ax.get_legend().get_texts())
    two_times = dict(table, t_inference=[1.0, 86400.0] * 3)
    with pytest.raises(ValueError, match="several inference times"):
        plot.accuracy_vs_energy(two_times)
    with pytest.raises(KeyError, match="energy_per_inference_J"):
        plot.accuracy_vs_energy({"accuracy": [0.5]})


def test_run_csv_cost_columns_are_not_plot_axes(tmp_path):
    from pcmsim import plot_results
    header = "model,p_out,energy_per_inference_J,latency_s,inferences_per_s,area_mm2," \
             "t_inference,trials,acc_mean,acc_std,ci95_low,ci95_high,fp32_acc"
    rows = ["m,4,2e-06,1e-4,1e4,3.7,86400,3,0.8,0.01,0.78,0.82,0.9",
            "m,8,8e-06,1e-4,1e4,3.7,86400,3,0.88,0.01,0.86,0.9,0.9"]
    f = tmp_path / "runs.csv"
    f.write_text("\n".join([header, *rows]) + "\n")
    res = plot_results.load_results(str(f))
    assert "energy_per_inference_J" not in res["axes"] and "p_out" in res["axes"]


def test_every_subcommand_takes_the_preset_and_the_cost_options():
    for command in ("run", "sweep", "map"):
        text = run_cli(command, "--help")
        for option in ("--preset", "--cost-file", "--adc-fom", "--adc-columns",
                       "--tile-area-mm2", "--adc-area-um2", "--schedule"):
            assert option + " " in text, f"{command} --help lacks {option}"
    assert "--preset " in run_cli("device", "--help")
