"""pcmsim.plot on synthetic data: each function returns a Figure with the expected axes and
labels and saves a PNG. Needs only NumPy and Matplotlib (not the C++ module)."""

import importlib.util
import json
import pathlib

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
from matplotlib.figure import Figure  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[2]


def _load(name):
    """pcmsim.<name>: the installed package when the extension is built, else the source file
    alone (the plot modules need no C++)."""
    try:
        return importlib.import_module(f"pcmsim.{name}")
    except ImportError:
        spec = importlib.util.spec_from_file_location(
            f"pcmsim_{name}_standalone", REPO / "python" / "pcmsim" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module


plot = _load("plot")
plot_results = _load("plot_results")

YEAR = 365 * 86400.0
TIMES = np.array([1.0, 3600.0, 86400.0, YEAR])


def _save(fig, tmp_path, name):
    path = tmp_path / name
    fig.savefig(path, dpi=60)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 1000
    return path


def test_conductance_histograms_array(tmp_path):
    rng = np.random.default_rng(1)
    targets = np.array([2e-6, 10e-6, 20e-6])  # siemens
    g = targets[None, :, None] * (1 + 0.05 * rng.standard_normal((4, 3, 500)))
    g *= np.array([1.0, 0.8, 0.7, 0.5])[:, None, None]  # drift shrinks them
    fig = plot.conductance_histograms(g, TIMES, targets)
    assert isinstance(fig, Figure)
    axes = fig.axes
    assert len(axes) == 4
    assert axes[-1].get_xlabel() == "conductance (µS)"
    assert [a.get_title(loc="left") for a in axes] == [
        "t = 1 s", "t = 1 h", "t = 1 day", "t = 1 year"]
    labels = [t.get_text() for t in axes[0].get_legend().get_texts()]
    assert labels == ["target 2 µS", "target 10 µS", "target 20 µS"]
    # Plotted in µS: the x range covers the largest target in µS.
    assert axes[0].get_xlim()[1] > 20
    _save(fig, tmp_path, "g.png")


def test_conductance_histograms_mapping_in_uS(tmp_path):
    rng = np.random.default_rng(2)
    data = {0.0: {5.0: rng.normal(5, 0.5, 300), 15.0: rng.normal(15, 1, 300)},
            86400.0: {5.0: rng.normal(4, 0.5, 300), 15.0: rng.normal(12, 1, 300)}}
    fig = plot.conductance_histograms(data, unit="uS", density=False)
    assert [a.get_title(loc="left") for a in fig.axes] == ["t = 0 s", "t = 1 day"]
    assert fig.axes[0].get_ylabel() == "devices"
    _save(fig, tmp_path, "g2.png")


def test_conductance_histograms_rejects_bad_input():
    with pytest.raises(ValueError, match="unit"):
        plot.conductance_histograms(np.zeros((2, 10)), [0, 1], unit="mS")
    with pytest.raises(ValueError, match="2 times for 3 snapshots"):
        plot.conductance_histograms(np.zeros((3, 1, 10)), [0, 1])
    with pytest.raises(ValueError, match="shape"):
        plot.conductance_histograms(np.zeros(10), [0])


def _long_table(times, trials, gdc, rng):
    rows = {"t_inference": [], "trial": [], "accuracy": [], "gdc": []}
    for g in gdc:
        for t in times:
            for k in range(trials):
                drop = (0.01 if g else 0.05) * np.log10(1 + t)
                rows["t_inference"].append(t)
                rows["trial"].append(k)
                rows["accuracy"].append(0.9 - drop + 0.003 * rng.standard_normal())
                rows["gdc"].append(g)
    return {k: np.array(v) for k, v in rows.items()}


def test_summarise_long_and_2d():
    rng = np.random.default_rng(3)
    table = _long_table(TIMES, 5, [True], rng)
    s = plot.summarise(table, ["time"])
    np.testing.assert_array_equal(s["time"], TIMES)
    for i, t in enumerate(TIMES):
        acc = table["accuracy"][table["t_inference"] == t]
        assert s["acc_mean"][i] == pytest.approx(acc.mean())
        assert s["acc_std"][i] == pytest.approx(acc.std(ddof=1))
        assert s["trials"][i] == 5
    # pcmsim run's file layout: accuracy [times, trials]
    acc = rng.uniform(0.8, 0.9, (4, 3))
    s = plot.summarise({"t_inference_s": TIMES[::-1], "accuracy": acc}, ["time"])
    np.testing.assert_allclose(s["acc_mean"], acc.mean(axis=1)[::-1])
    np.testing.assert_allclose(s["acc_std"], acc.std(axis=1, ddof=1)[::-1])
    with pytest.raises(KeyError, match="time"):
        plot.summarise({"accuracy": acc}, ["time"])
    with pytest.raises(KeyError, match="accuracy"):
        plot.summarise({"t": TIMES}, ["time"])


def test_accuracy_vs_time_split_by_gdc(tmp_path):
    rng = np.random.default_rng(4)
    table = _long_table(TIMES, 3, [True, False], rng)
    fig = plot.accuracy_vs_time(table, by="gdc", fp32=0.9)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    assert ax.get_xlabel() == "time after programming"
    assert ax.get_ylabel() == "top-1 accuracy (%)"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["GDC off", "GDC on", "FP32 (90.00 %)",
                      "shaded: 95 % CI of the mean over 3 trials (Student t)"]
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks[0] == "1 s" and ticks[-1] == "1 year"
    # The GDC-on curve (second series) ends higher than the GDC-off one; values in percent.
    off, on = ax.get_lines()[0], ax.get_lines()[1]
    assert on.get_ydata()[-1] > off.get_ydata()[-1]
    assert 50 < on.get_ydata()[0] <= 100
    assert len(ax.collections) == 2  # one 95 % CI band per curve
    _save(fig, tmp_path, "t.png")


def test_accuracy_vs_time_mapping_of_summaries(tmp_path):
    on = {"t_inference_s": TIMES, "acc_mean": [0.89, 0.885, 0.88, 0.87],
          "acc_std": [0.002] * 4, "trials": [5] * 4, "fp32_accuracy": 0.8923}
    off = {"t_inference_s": TIMES, "acc_mean": [0.88, 0.7, 0.5, 0.2], "acc_std": [0.01] * 4,
           "trials": [5] * 4}
    fig = plot.accuracy_vs_time({"GDC on": on, "GDC off": off}, errors="bar", title="mlp")
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["GDC on", "GDC off", "FP32 (89.23 %)",
                      "error bars: 95 % CI of the mean over 5 trials (Student t)"]
    assert ax.get_title() == "mlp"
    # Error bars are the 95 % CI half-width t(0.975, 4)·std/√5, not the std.
    segments = ax.containers[1].lines[2][0].get_segments()
    half = 2.77644511 * 1.0 / np.sqrt(5)  # std 0.01 = 1 point
    for seg in segments:
        assert seg[1][1] - seg[0][1] == pytest.approx(2 * half)
    _save(fig, tmp_path, "t2.png")
    # Without a trial count there is no interval: no bars, a warning, and the legend says so.
    del off["trials"]
    with pytest.warns(UserWarning, match="trials"):
        fig = plot.accuracy_vs_time(off, errors="bar")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "no error bars: number of trials unknown"]
    assert not ax.containers[0].has_yerr


def _band_y(ax, k):
    """(low, high) y of the k-th fill_between band, per x."""
    v = ax.collections[k].get_paths()[0].vertices
    return v[:, 1].min(), v[:, 1].max(), v


def test_bands_are_95_ci_of_the_mean_clipped_to_100():
    # Three trials per time; near 100 % the unclipped CI would exceed 100 %.
    acc = np.array([[1.0, 1.0, 0.97], [0.90, 0.88, 0.86]])
    table = {"t_inference_s": [1.0, 3600.0], "accuracy": acc}
    fig = plot.accuracy_vs_time(table)
    ax = fig.axes[0]
    assert len(ax.collections) == 1
    _, top, v = _band_y(ax, 0)
    assert top <= 100.0
    assert top == pytest.approx(100.0)  # clipped, not below
    # The band at t = 3600 s is the Student t 95 % CI of the mean (not ±1 std).
    m, sd = acc[1].mean() * 100, acc[1].std(ddof=1) * 100
    half = plot.t975(2) * sd / np.sqrt(3)
    ys = v[np.isclose(v[:, 0], 3600.0), 1]
    assert ys.min() == pytest.approx(m - half) and ys.max() == pytest.approx(m + half)
    s = plot.summarise(table, ["time"])
    assert s["ci95_high"][0] == 1.0 and s["ci95_low"][1] == pytest.approx((m - half) / 100)
    label = ax.get_legend().get_texts()[-1].get_text()
    assert label == "shaded: 95 % CI of the mean over 3 trials (Student t)"
    # Bars are clipped too.
    fig = plot.accuracy_vs_time(table, errors="bar")
    segments = fig.axes[0].containers[0].lines[2][0].get_segments()
    assert max(seg[:, 1].max() for seg in segments) <= 100.0


def test_one_trial_draws_no_band_and_says_1_trial():
    table = {"t": [1.0, 60.0, 3600.0], "accuracy": [0.9, 0.89, 0.87], "trial": [0, 0, 0]}
    fig = plot.accuracy_vs_time(table)
    ax = fig.axes[0]
    assert len(ax.collections) == 0
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["1 trial: no error band"]
    assert plot.trials_text([1]) == "1 trial" and plot.trials_text([3, 5]) == "3–5 trials"
    assert plot.error_note([1, 1], "bar") == "1 trial: no error bars"


def test_accuracy_vs_time_drops_zero_time_with_warning():
    table = {"t": [0.0, 1.0, 10.0], "acc_mean": [0.9, 0.9, 0.8]}
    with pytest.warns(UserWarning, match="times <= 0"):
        fig = plot.accuracy_vs_time(table, errors="none")
    assert list(fig.axes[0].get_lines()[0].get_xdata()) == [1.0, 10.0]
    with pytest.raises(ValueError, match="errors"):
        plot.accuracy_vs_time(table, errors="shade")


def _precision_table(rng, trials=2):
    rows = {"p_in": [], "p_out": [], "trial": [], "accuracy": []}
    for p_in in range(2, 9):
        for p_out in range(2, 9):
            for k in range(trials):
                acc = 0.9 - 0.4 * 2.0 ** -(p_in - 1) - 0.3 * 2.0 ** -(p_out - 1)
                rows["p_in"].append(p_in)
                rows["p_out"].append(p_out)
                rows["trial"].append(k)
                rows["accuracy"].append(acc + 0.002 * rng.standard_normal())
    return {k: np.array(v) for k, v in rows.items()}


def test_accuracy_vs_precision_curves(tmp_path):
    rng = np.random.default_rng(5)
    table = _precision_table(rng)
    fig = plot.accuracy_vs_precision(table, x="p_out", by="p_in", fp32=0.9)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "ADC precision p_out (bits)"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[:7] == [f"p_in = {p}" for p in range(2, 9)]
    assert list(ax.get_xticks()) == list(range(2, 9))
    # Accuracy rises with precision in this synthetic table.
    y = ax.containers[-1].lines[0].get_ydata()  # the p_in = 8 curve
    assert y[-1] > y[0]
    _save(fig, tmp_path, "p.png")
    # A table without the `by` column: one curve, no error.
    single = {"p_out": [4, 6, 8], "acc_mean": [0.7, 0.85, 0.89], "acc_std": [0, 0, 0],
              "trials": [1, 1, 1]}
    fig = plot.accuracy_vs_precision(single)
    assert len(fig.axes[0].containers) == 1
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == [
        "1 trial: no error bars"]


def test_precision_heatmap_from_table(tmp_path):
    rng = np.random.default_rng(6)
    table = _precision_table(rng)
    fig = plot.precision_heatmap(table, fp32=0.9)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "ADC precision p_out (bits)"
    assert ax.get_ylabel() == "DAC precision p_in (bits)"
    assert [t.get_text() for t in ax.get_xticklabels()] == [str(p) for p in range(2, 9)]
    image = ax.get_images()[0].get_array()
    assert image.shape == (7, 7)
    # cell (p_in = 8, p_out = 8) is the mean over its two trials, in percent
    sel = (table["p_in"] == 8) & (table["p_out"] == 8)
    assert image[6, 6] == pytest.approx(table["accuracy"][sel].mean() * 100)
    assert len(ax.texts) == 49
    assert fig.axes[1].get_ylabel() == "top-1 accuracy (%)"  # colour bar
    _save(fig, tmp_path, "h.png")


def test_precision_heatmap_from_grid_relative(tmp_path):
    grid = np.array([[0.5, 0.6], [0.7, np.nan]])
    fig = plot.precision_heatmap(grid, p_in=[4, 8], p_out=[4, 8], fp32=0.9, relative=True)
    image = fig.axes[0].get_images()[0].get_array()
    assert image[0, 0] == pytest.approx(-40.0)
    assert image.mask[1, 1]  # missing cell left blank
    assert fig.axes[1].get_ylabel() == "top-1 accuracy − FP32 (percentage points)"
    # The cell labels show the gap the colours show (signed points), not the accuracy.
    assert [t.get_text() for t in fig.axes[0].texts] == ["-40.0", "-30.0", "-20.0"]
    _save(fig, tmp_path, "h2.png")
    with pytest.raises(ValueError, match="shape"):
        plot.precision_heatmap(grid, p_in=[4], p_out=[4, 8])
    with pytest.raises(ValueError, match="FP32"):
        plot.precision_heatmap(grid, p_in=[4, 8], p_out=[4, 8], relative=True)


def test_precision_heatmap_relative_labels_match_colours():
    rng = np.random.default_rng(7)
    table = _precision_table(rng)
    table["fp32_accuracy"] = np.full(len(table["accuracy"]), 0.91)
    fig = plot.precision_heatmap(table, relative=True)
    ax = fig.axes[0]
    image = ax.get_images()[0].get_array()
    assert "percentage points" in fig.axes[1].get_ylabel()
    assert len(ax.texts) == 49
    for text in ax.texts:
        x, y = text.get_position()
        gap = image[int(round(y)), int(round(x))]
        assert gap < 0  # every cell is below FP32 in this table
        assert text.get_text() == f"{gap:+.1f}"
    # Absolute maps keep absolute labels.
    fig = plot.precision_heatmap(table)
    image = fig.axes[0].get_images()[0].get_array()
    assert fig.axes[0].texts[-1].get_text() == f"{image[6, 6]:.1f}"
    assert 50 < float(fig.axes[0].texts[-1].get_text()) <= 100


# An MLP 784-300-100-10 on 256 x 256 tiles, in render_json's layout.
def _mlp_plan_json():
    def slices(rows, cols, tile0):
        out, tile = [], tile0
        for c0 in range(0, cols, 256):
            for r0 in range(0, rows, 256):
                out.append({"tile": tile, "group": 0, "row0": r0, "col0": c0,
                            "rows": min(256, rows - r0), "cols": min(256, cols - c0),
                            "tile_row0": 0, "tile_col0": 0})
                tile += 1
        return out, tile
    fc1, t = slices(784, 300, 0)
    fc2, t = slices(300, 100, t)
    fc3, t = slices(100, 10, t)
    return {"chip": {"tile_rows": 256, "tile_cols": 256, "num_tiles": 0},
            "plan": {"tiles_used": t, "layers": [
                {"name": "fc1", "digital": False, "slices": fc1},
                {"name": "fc2", "digital": False, "slices": fc2},
                {"name": "fc3", "digital": False, "slices": fc3}]}}


def test_tile_utilisation_map_json(tmp_path):
    doc = _mlp_plan_json()
    tiles = doc["plan"]["tiles_used"]
    assert tiles == 8 + 2 + 1
    fig = plot.tile_utilisation_map(json.dumps(doc))
    ax = fig.axes[0]
    # One background square per tile plus one rectangle per slice.
    n_slices = sum(len(layer["slices"]) for layer in doc["plan"]["layers"])
    assert len(ax.patches) == tiles + n_slices
    texts = [t.get_text() for t in ax.texts]
    assert "100 %" in texts  # a full 256 x 256 block of fc1
    assert f"{16 * 44 / 65536 * 100:.1f} %" in texts  # fc1's corner block 16 x 44: "1.1 %"
    assert f"{44 * 256 / 65536 * 100:.0f} %" in texts  # fc1's last column block: "17 %"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["fc1", "fc2", "fc3"]
    used = 784 * 300 + 300 * 100 + 100 * 10
    assert f"utilisation {used / (tiles * 65536) * 100:.1f} %" in ax.get_title()
    _save(fig, tmp_path, "u.png")


def test_tile_utilisation_map_objects(tmp_path):
    class Obj:
        def __init__(self, **kw):
            self.__dict__.update(kw)

    doc = _mlp_plan_json()
    layers = [Obj(layer=Obj(name=l["name"]), digital=False,
                  slices=[Obj(**s) for s in l["slices"]]) for l in doc["plan"]["layers"]]
    layers.append(Obj(layer=Obj(name="head"), digital=True, slices=[]))
    plan_obj = Obj(chip=Obj(tile_rows=256, tile_cols=256), layers=layers, tiles_used=11)
    fig = plot.tile_utilisation_map(plan_obj, columns=4, title="mlp")
    ax = fig.axes[0]
    assert ax.get_title() == "mlp"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["fc1", "fc2", "fc3"]
    _save(fig, tmp_path, "u2.png")
    bad = Obj(chip=Obj(tile_rows=256, tile_cols=256), layers=layers, tiles_used=3)
    with pytest.raises(ValueError, match="tile"):
        plot.tile_utilisation_map(bad)


def test_format_time():
    assert plot.format_time(0) == "0 s"
    assert plot.format_time(3600) == "1 h"
    assert plot.format_time(2 * 86400) == "2 days"
    assert plot.format_time(90) == "1.5 min"
    assert plot.format_time(YEAR) == "1 year"


def test_python_m_pcmsim_plot_on_a_run_file(tmp_path):
    """`python3 -m pcmsim.plot RESULTS.h5 -o FIG.png` delegates to pcmsim.plot_results."""
    import os
    import subprocess
    import sys

    h5py = pytest.importorskip("h5py")
    try:
        import pcmsim  # noqa: F401  (the package, with its compiled module)
    except ImportError:
        pytest.skip("the pcmsim package (compiled module) is not importable")
    results = tmp_path / "run.h5"
    with h5py.File(results, "w") as f:  # the layout `pcmsim run` writes
        f.attrs["format"] = "pcmsim-run"
        f.attrs["fp32_accuracy"] = 0.9
        f.attrs["images"] = 300
        f["t_inference_s"] = TIMES
        f["accuracy"] = np.array([[0.89, 0.88], [0.88, 0.87], [0.87, 0.87], [0.86, 0.84]])
        f["acc_mean"] = f["accuracy"][()].mean(axis=1)
        f["acc_std"] = f["accuracy"][()].std(axis=1, ddof=1)
    out = tmp_path / "fig.png"
    proc = subprocess.run([sys.executable, "-m", "pcmsim.plot", str(results), "-o", str(out)],
                          capture_output=True, text=True, env=dict(os.environ), timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # A missing file is an error exit with a message, not a traceback.
    proc = subprocess.run([sys.executable, "-m", "pcmsim.plot", str(tmp_path / "none.h5")],
                          capture_output=True, text=True, env=dict(os.environ), timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "none.h5" in proc.stderr
    # The CSV view beside the file (what `pcmsim run` writes) plots the same way ...
    (tmp_path / "run.csv").write_text(
        "model,p_in,p_out,t_inference_s,gdc,trials,acc_mean,acc_std,fp32_acc\n"
        + "".join(f"mlp,8,8,{t},on,2,{m},0.01,0.9\n"
                  for t, m in zip(TIMES, (0.9, 0.88, 0.87, 0.85))))
    out = tmp_path / "fig_csv.png"
    proc = subprocess.run([sys.executable, "-m", "pcmsim.plot", str(tmp_path / "run.csv"), "-o",
                           str(out)], capture_output=True, text=True, env=dict(os.environ),
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # ... and another CSV is exit code 2 with a message naming it and the formats accepted.
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    proc = subprocess.run([sys.executable, "-m", "pcmsim.plot", str(tmp_path / "other.csv")],
                          capture_output=True, text=True, env=dict(os.environ), timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "other.csv" in proc.stderr
    assert "pcmsim sweep" in proc.stderr and "CSV view" in proc.stderr


# --------------------------------------------------------------------------------------------
# pcmsim.plot_results (python3 -m pcmsim.plot) on synthetic results files


def _sweep_points(axes, trials, accuracy):
    """Points of a sweep over `axes` ({name: [values as text]}, last varying fastest) with
    `trials` per point; accuracy(settings dict, trial) -> fraction. Returns (names, settings
    per point, [points, trials] accuracies)."""
    import itertools

    names = list(axes)
    settings = [dict(zip(names, combo)) for combo in itertools.product(*axes.values())]
    acc = np.array([[accuracy(p, k) for k in range(trials)] for p in settings])
    return names, settings, acc


def _ci(acc):
    n = acc.shape[1]
    mean = acc.mean(axis=1)
    std = acc.std(axis=1, ddof=1) if n > 1 else np.zeros_like(mean)
    half = plot.t975(n - 1) * std / np.sqrt(n) if n > 1 else np.zeros_like(mean)
    return mean, std, mean - half, mean + half  # unclipped, as nets/sweep.cpp writes them


def _write_sweep_h5(path, axes, trials, accuracy, fp32=0.9):
    """A results file in the layout SweepStore::write_file writes (the parts plots read)."""
    h5py = pytest.importorskip("h5py")
    names, settings, acc = _sweep_points(axes, trials, accuracy)
    mean, std, low, high = _ci(acc)
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "pcmsim-sweep"
        f.attrs["model"] = "nets/zoo/mlp.h5"
        f.attrs["images"] = 200
        f.attrs["trials"] = trials
        f.attrs["fp32_accuracy"] = fp32
        f.attrs["axes"] = names
        pts = f.create_group("points")
        for a in names:
            pts.create_dataset(f"axis/{a}", data=[p[a].encode() for p in settings])
        pts["accuracy"] = acc
        pts["acc_mean"], pts["acc_std"] = mean, std
        pts["ci95_low"], pts["ci95_high"] = low, high
    return acc


def _bands(ax):
    return [c for c in ax.collections if c.get_paths()]


def test_plot_results_bands_are_clipped_95_ci_and_named(tmp_path):
    times = ["1", "3600", "86400"]
    # Close to 100 %: the stored (unclipped) CI of p-in = 8 goes above 100 %.
    acc = _write_sweep_h5(tmp_path / "s.h5", {"p-in": ["4", "8"], "t-inference": times}, 3,
                          lambda p, k: min(1.0, (0.99 if p["p-in"] == "8" else 0.8)
                                           + 0.01 * k))
    res = plot_results.load_results(str(tmp_path / "s.h5"))
    assert np.all(res["high"] <= 1.0) and np.all(res["low"] >= 0.0)
    assert _ci(acc)[3].max() > 1.0  # the file's own CI exceeds 100 %
    fig = plot_results.figure_for(res)
    ax = fig.axes[0]
    assert len(_bands(ax)) == 2
    for band in _bands(ax):
        assert band.get_paths()[0].vertices[:, 1].max() <= 100.0
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[-1] == "shaded: 95 % CI of the mean over 3 trials (Student t)"
    assert ax.get_ylabel() == "top-1 accuracy (%)"
    assert ax.get_title().endswith("200 images, 3 trials")


def test_plot_results_one_trial_has_no_band_and_says_1_trial(tmp_path):
    _write_sweep_h5(tmp_path / "s.h5", {"p-in": ["4", "8"], "t-inference": ["1", "3600"]}, 1,
                    lambda p, k: 0.8 + 0.01 * int(p["p-in"]))
    res = plot_results.load_results(str(tmp_path / "s.h5"))
    fig = plot_results.figure_for(res)
    ax = fig.axes[0]
    assert _bands(ax) == []
    assert ax.get_title().endswith(", 1 trial") and "1 trials" not in ax.get_title()
    assert [t.get_text() for t in ax.get_legend().get_texts()][-1] == "1 trial: no error band"
    fig = plot_results.figure_for(res, ["t-inference", "p-in"])  # heatmap
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert len(texts) == 4 and not any("±" in t for t in texts)
    assert fig.axes[-1].get_ylabel() == "top-1 accuracy (%)"
    assert fig.axes[0].get_title() == ("mlp.h5, 200 images, 1 trial\n"
                                       "one trial: no confidence interval")
    assert fig.axes[0].get_xlabel() == "time after programming (s)"
    assert fig.axes[0].get_ylabel() == "DAC precision p_in (bits)"


def test_plot_results_heatmap_names_the_ci_of_its_cells(tmp_path):
    levels = ["4", "6", "8"]
    _write_sweep_h5(tmp_path / "s.h5", {"p-in": levels, "p-out": levels}, 3,
                    lambda p, k: 0.8 + 0.01 * int(p["p-in"]) + 0.002 * k)
    fig = plot_results.figure_for(plot_results.load_results(str(tmp_path / "s.h5")))
    ax = fig.axes[0]
    half = plot.t975(2) * 0.2 / np.sqrt(3)  # std of (0, 0.2, 0.4) points is 0.2
    assert ax.texts[0].get_text() == f"84.2\n±{half:.1f}"
    assert ax.get_title().endswith(
        "\ncells: mean ± 95 % CI half-width over 3 trials (Student t)")
    assert fig.axes[-1].get_ylabel() == "mean top-1 accuracy (%)"
    assert ax.get_xlabel() == "ADC precision p_out (bits)"


def _series_lines(fig):
    """The data curves of a figure (not the FP32 line, not legend proxies)."""
    return [line for ax in fig.axes for line in ax.get_lines()
            if not line.get_label().startswith(("FP32", "_"))]


def _look(line):
    from matplotlib.colors import to_hex
    return to_hex(line.get_color()), line.get_linestyle(), line.get_marker()


def _legend_texts(fig):
    return [t.get_text() for ax in fig.axes if ax.get_legend()
            for t in ax.get_legend().get_texts()]


def test_plot_results_draws_all_25_series_distinctly(tmp_path):
    levels = ["2", "3", "4", "6", "8"]
    axes = {"p-in": levels, "p-out": levels, "t-inference": ["1", "3600", "86400", "31536000"]}
    _write_sweep_h5(tmp_path / "s.h5", axes, 3,
                    lambda p, k: 0.9 - 0.2 / int(p["p-in"]) - 0.1 / int(p["p-out"])
                    - 0.002 * np.log10(float(p["t-inference"])) + 0.001 * k)
    res = plot_results.load_results(str(tmp_path / "s.h5"))
    fig = plot_results.figure_for(res)
    lines = _series_lines(fig)
    assert len(lines) == 25  # every (p-in, p-out) curve, none dropped
    assert {line.get_label() for line in lines} == {
        f"p-in={a}, p-out={b}" for a in levels for b in levels}
    assert len({_look(line) for line in lines}) == 25  # no two curves look the same
    for line in lines:
        assert len(line.get_xdata()) == 4
    # Small multiples: one panel per p-in value, five curves each, titled by the value.
    panels = [ax for ax in fig.axes if ax.get_lines()]
    assert [ax.get_title() for ax in panels] == [f"p-in = {v}" for v in levels]
    assert all(len(_series_lines_of(ax)) == 5 for ax in panels)
    assert all(ax.get_xscale() == "log" for ax in panels)
    # Narrow panels: fewer named ticks, so that they do not overlap.
    assert [t.get_text() for t in panels[-1].get_xticklabels()] == ["1 s", "1 h", "1 day",
                                                                     "1 year"]
    assert panels[0].get_ylabel() == "top-1 accuracy (%)"
    assert any(ax.get_xlabel() == "time after programming" for ax in panels)
    # One grouped legend: colour + line style per p-out, marker per p-in panel, FP32, band.
    texts = _legend_texts(fig)
    assert texts == ([f"p-out={v}" for v in levels] + [f"p-in = {v}" for v in levels]
                     + ["FP32 (90.00 %)",
                        "shaded: 95 % CI of the mean over 3 trials (Student t)"])
    path = tmp_path / "facets.png"
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=60)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _series_lines_of(ax):
    return [line for line in ax.get_lines() if not line.get_label().startswith(("FP32", "_"))]


def test_plot_results_one_axis_with_many_values_is_split_into_panels(tmp_path):
    noise = [f"{0.01 * k:.2f}" for k in range(26)]
    _write_sweep_h5(tmp_path / "s.h5", {"out-noise": noise, "t-inference": ["1", "86400"]}, 2,
                    lambda p, k: 0.9 - float(p["out-noise"]) + 0.001 * k)
    fig = plot_results.figure_for(plot_results.load_results(str(tmp_path / "s.h5")))
    lines = _series_lines(fig)
    assert len(lines) == 26
    assert len({_look(line) for line in lines}) == 26
    panels = [ax for ax in fig.axes if ax.get_lines()]
    assert 2 <= len(panels) and all(len(_series_lines_of(ax)) <= plot_results.MAX_CURVES
                                    for ax in panels)
    assert panels[0].get_title() == f"out-noise = {noise[0]} … {noise[8]}"
    texts = _legend_texts(fig)
    assert texts[:26] == [f"out-noise={v}" for v in noise]


def test_accuracy_vs_time_many_series_look_distinct():
    tables = {f"chip {k}": {"t": TIMES, "acc_mean": 0.9 - 0.001 * k * np.arange(4),
                            "acc_std": [0.01] * 4, "trials": [3] * 4} for k in range(25)}
    fig = plot.accuracy_vs_time(tables)
    lines = _series_lines(fig)
    assert len(lines) == 25
    assert len({_look(line) for line in lines}) == 25
    assert len(_legend_texts(fig)) == 25 + 1  # every series + the band note
    styles = plot.series_styles(400)
    assert len({tuple(s.values()) for s in styles}) == 400


def _write_sweep_csv(path, axes, trials, accuracy):
    """The CSV view beside a sweep file, as SweepStore::csv writes it."""
    names, settings, acc = _sweep_points(axes, trials, accuracy)
    mean, std, low, high = _ci(acc)
    lines = [",".join(["point", *names, "seed", "trials", "acc_mean", "acc_std", "ci95_low",
                       "ci95_high"])]
    for i, p in enumerate(settings):
        lines.append(",".join([str(i), *[p[a] for a in names], "7", str(trials),
                               *(f"{v:.10g}" for v in (mean[i], std[i], low[i], high[i]))]))
    path.write_text("\n".join(lines) + "\n")


def _accuracy_model(p, k):
    return min(1.0, 0.995 - 0.05 * (p["p-in"] == "4") - 0.001 * float(p["t-inference"]) ** 0.3
               + 0.004 * k)


def test_plot_results_reads_the_sweep_csv_view(tmp_path, capsys):
    axes = {"p-in": ["4", "8"], "gdc": ["on", "off"], "t-inference": ["1", "3600", "86400"]}
    _write_sweep_h5(tmp_path / "s.h5", axes, 3, _accuracy_model)
    _write_sweep_csv(tmp_path / "s.csv", axes, 3, _accuracy_model)
    a = plot_results.load_results(str(tmp_path / "s.h5"))
    b = plot_results.load_results(str(tmp_path / "s.csv"))
    assert b["axes"] == a["axes"] == ["p-in", "gdc", "t-inference"]
    assert b["values"] == a["values"]
    for key in ("mean", "low", "high", "half"):
        np.testing.assert_allclose(b[key], a[key], rtol=0, atol=1e-9)  # 10 digits
    assert b["high"].max() <= 1.0 and b["title"] == "s.csv, 3 trials"
    fig = plot_results.figure_for(b)
    assert len(_series_lines(fig)) == 4
    out = tmp_path / "fig.png"
    assert plot_results.main([str(tmp_path / "s.csv"), "-o", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert capsys.readouterr().out.strip() == str(out)


def test_plot_results_reads_the_run_csv_view(tmp_path):
    # `pcmsim run --out r.h5` writes r.csv (cli/cmd_run.cpp); two runs pasted together.
    lines = ["model,p_in,p_out,t_inference_s,gdc,trials,acc_mean,acc_std,fp32_acc"]
    for gdc, drop in (("on", 0.0), ("off", 0.02)):
        for t, m in ((1, 0.99), (3600, 0.98), (3.1536e+07, 0.95)):
            lines.append(f"mlp,8,8,{t},{gdc},5,{m - drop},0.02,0.9923")
    (tmp_path / "r.csv").write_text("\n".join(lines) + "\n")
    res = plot_results.load_results(str(tmp_path / "r.csv"))
    assert res["axes"] == ["gdc", "t-inference"]  # the setting that varies, then time
    assert res["fp32"] == pytest.approx(0.9923)
    assert res["title"] == "mlp, 5 trials"
    half = plot.t975(4) * 0.02 / np.sqrt(5)
    np.testing.assert_allclose(res["half"], half)
    np.testing.assert_allclose(res["high"], np.minimum(res["mean"] + half, 1.0))
    assert res["high"][0] == 1.0  # 0.99 + 0.025 clipped to 100 %
    fig = plot_results.figure_for(res)
    assert {line.get_label() for line in _series_lines(fig)} == {"gdc=on", "gdc=off"}
    assert fig.axes[0].get_xscale() == "log"


def test_plot_results_bad_input_exits_2_naming_the_file(tmp_path, capsys):
    device_csv = tmp_path / "device.csv"  # a CSV of another command
    device_csv.write_text("model,g_target_uS,t_inference_s,mean_uS\npcm,1,0,1.0\n")
    junk = tmp_path / "junk.bin"
    junk.write_bytes(bytes(range(256)) * 4)
    fake_h5 = tmp_path / "broken.h5"  # HDF5 signature, then garbage
    fake_h5.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 100)
    missing = tmp_path / "missing.csv"
    for path, why in ((device_csv, "missing trials, acc_mean"),
                      (junk, "neither HDF5 nor CSV"), (fake_h5, "cannot read it as HDF5"),
                      (missing, "cannot read it")):
        assert plot_results.main([str(path), "-o", str(tmp_path / "x.png")]) == 2
        err = capsys.readouterr().err
        assert str(path) in err and why in err, err
        assert "CSV view" in err and "Traceback" not in err
        with pytest.raises(ValueError, match=str(path.name)):
            plot_results.load_results(str(path))
    assert not (tmp_path / "x.png").exists()


def test_plot_results_time_axis_under_either_name(tmp_path):
    # Sweep files name the time axis 't-inference' or (canonical setting names) 't_inference'.
    for name in ("t-inference", "t_inference"):
        _write_sweep_h5(tmp_path / f"{name}.h5", {"p_in": ["4", "8"], name: ["1", "3600"]}, 2,
                        lambda p, k: 0.8 + 0.01 * k)
        fig = plot_results.figure_for(plot_results.load_results(str(tmp_path / f"{name}.h5")))
        ax = fig.axes[0]
        assert ax.get_xscale() == "log" and ax.get_xlabel() == "time after programming"
        assert {line.get_label() for line in _series_lines(fig)} == {"p_in=4", "p_in=8"}
