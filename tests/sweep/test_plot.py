"""python/pcmsim/plot_results.py draws the natural figure of a sweep file: time curves with CI
bands, a heatmap of two converter axes, and reads pcmsim-run files too."""
import importlib.util
import os
import subprocess
import sys

import numpy as np

from sweep_common import model_args, pcmsim, run, tmpdir

exe = pcmsim()
src = os.environ.get("PCMSIM_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
script = os.path.join(src, "python", "pcmsim", "plot_results.py")
# Loaded from its file: the pcmsim package itself needs the compiled module, this file does not.
spec = importlib.util.spec_from_file_location("plot_results", script)
plot_results = importlib.util.module_from_spec(spec)
spec.loader.exec_module(plot_results)

d = tmpdir()
out = os.path.join(d, "s.h5")
r = run([exe, "sweep"] + model_args(trials=3, limit=50) +
        ["--p-in", "4,8", "--p-out", "4,8", "--t-inference", "1,3600", "--out", out])
assert r.returncode == 0, r.stderr

res = plot_results.load_results(out)
assert res["axes"] == ["p_in", "p_out", "t_inference"], res["axes"]
assert len(res["mean"]) == 8
assert np.all(res["low"] <= res["mean"]) and np.all(res["mean"] <= res["high"])
assert abs(plot_results.t975(2) - 4.30265273) < 1e-8

for extra, name in (([], "time.png"), (["--heatmap", "p-in,p-out"], "heat.png")):
    fig = os.path.join(d, name)
    r = run([sys.executable, script, out, "-o", fig] + extra)
    assert r.returncode == 0, r.stderr
    assert os.path.getsize(fig) > 10000, fig
    with open(fig, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"

# The time-curve figure has one curve per (p_in, p_out) plus the FP32 line.
fig = plot_results.figure_for(res)
assert len(fig.axes[0].get_lines()) == 5

# Bad input: a file that is not a results file, a heatmap of an axis not swept.
r = run([sys.executable, script, os.path.join(src, "zoo", "mlp.h5"), "-o",
         os.path.join(d, "x.png")])
assert r.returncode == 2 and "neither pcmsim-sweep nor pcmsim-run" in r.stderr, r.stderr
r = run([sys.executable, script, out, "--heatmap", "p-in,gdc", "-o", os.path.join(d, "y.png")])
assert r.returncode == 2 and "needs two of the swept axes" in r.stderr, r.stderr
print("OK")
