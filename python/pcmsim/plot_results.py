"""Plots of a results file of ``pcmsim sweep`` or ``pcmsim run``: the natural picture for the
swept axes.

* an inference-time axis: accuracy versus time after programming (log axis), one curve per
  combination of the other axes, with the 95 % confidence band of the mean over trials. Every
  combination is drawn: more than MAX_CURVES curves are split into small multiples (one panel
  per value of one of the other axes, or per run of values when there is only one), each curve
  with its own colour + line style + marker, and one legend beside the panels;
* two other axes: a heatmap of the mean accuracy (e.g. p_in x p_out), one panel per value of a
  third axis when there is one (all of them);
* one other axis: accuracy versus that axis with 95 % confidence error bars.

Bands and bars are the 95 % confidence interval of the mean over the Monte Carlo trials
(Student t, as the results file stores it), clipped to [0, 100] %, and the legend says so; with
one trial there is no interval and the figure says "1 trial". Same convention as pcmsim.plot.

``python3 -m pcmsim.plot RESULTS.h5 -o FIG.png`` calls :func:`main`; so does running this file.
RESULTS may also be the CSV view written beside the HDF5 file (same figure; a sweep's CSV has
no FP32 accuracy, so no FP32 line). Input that is neither exits with code 2 and a message
naming the file and the formats accepted.
Needs matplotlib (and h5py for HDF5 files) only (figures are built without pyplot, Agg canvas).
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import sys
from typing import Dict, List, Optional, Sequence

import numpy as np


def _plot_module():
    """pcmsim.plot (statistics and wording shared by every Python plot). This file also runs
    alone (``python3 plot_results.py``, or loaded from its path without the compiled package):
    then its sibling plot.py is loaded from its path."""
    try:
        from . import plot
        return plot
    except ImportError:
        import importlib.util

        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "plot.py")
        spec = importlib.util.spec_from_file_location("pcmsim_plot_standalone", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module


_plot = _plot_module()
t975 = _plot.t975  # two-sided 95 % Student t quantile (dof >= 1), as nets/sweep.cpp
trials_text = _plot.trials_text
error_note = _plot.error_note

_TIME_TICKS = [(1.0, "1 s"), (60.0, "1 min"), (3600.0, "1 h"), (86400.0, "1 day"),
               (30 * 86400.0, "1 month"), (365 * 86400.0, "1 year"),
               (10 * 365 * 86400.0, "10 years")]

TIME_AXIS = "t-inference"  # the time axis of run files, and of sweep files up to now
TIME_AXES = (TIME_AXIS, "t_inference")  # sweep files name it either way
MAX_CURVES = 10  # curves in one panel; more are split into panels (small multiples)


def _text(v) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _number(text: str) -> Optional[float]:
    try:
        return float(text)
    except ValueError:
        return None


def _finish(res: Dict) -> Dict:
    """Adds ``half`` (the 95 % CI half-width as stored) and clips ``low``/``high`` to the valid
    accuracy range [0, 1]."""
    mean = np.asarray(res["mean"], dtype=float)
    low, high = np.asarray(res["low"], dtype=float), np.asarray(res["high"], dtype=float)
    res.update(mean=mean, half=(high - low) / 2, low=np.clip(low, 0.0, 1.0),
               high=np.clip(high, 0.0, 1.0),
               trials=np.broadcast_to(np.asarray(res["trials"], dtype=int), mean.shape))
    return res


ACCEPTED = ("the HDF5 results file of `pcmsim sweep` or `pcmsim run` (--out FILE.h5) or the "
            "CSV view written beside it (FILE.csv)")
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
# The CSV view of a sweep (nets/sweep.cpp, SweepStore::csv): point, the axes, then these.
_SWEEP_CSV_TAIL = ["seed", "trials", "acc_mean", "acc_std", "ci95_low", "ci95_high"]
# The CSV view of a run (nets/results.cpp, run_results_csv; pcmsim.results_table has the same
# columns plus acc_trial_<k>): model, every setting, then these results. Files written before
# the settings' names were unified call the time t_inference_s.
_RUN_TIME_COLUMNS = ("t_inference", "t_inference_s")
_RUN_CSV_NEEDS = ["trials", "acc_mean", "acc_std"]
# The cost totals (docs/cost.md) follow from the settings: results, never axes of their own.
_RUN_COST_COLUMNS = ("energy_per_inference_J", "latency_s", "inferences_per_s", "area_mm2")
_RUN_RESULT_COLUMNS = {"trials", "acc_mean", "acc_std", "ci95_low", "ci95_high", "fp32_acc",
                       *_RUN_TIME_COLUMNS, *_RUN_COST_COLUMNS}


def load_results(path: str) -> Dict:
    """The points of a results file as a dict: ``axes`` (names), ``values`` (axis -> list of
    text per point), ``mean``, ``low``, ``high`` (95 % CI of the mean, clipped to [0, 1]),
    ``half`` (its half-width, unclipped), ``trials`` arrays, ``fp32`` (or None), ``title``.

    ``path``: the HDF5 file of ``pcmsim sweep`` or ``pcmsim run``, or its CSV view (recognised
    by content, not by name). Anything else raises ValueError naming the file and the formats
    accepted.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(2048 + 8)
    except OSError as e:
        raise ValueError(f"[plot_results] {path}: cannot read it ({e.strerror or e}); "
                         f"expected {ACCEPTED}") from e
    # HDF5 files start with the signature at byte 0, 512, 1024 or 2048 (after a user block).
    if any(head[k:k + 8] == _HDF5_SIGNATURE for k in (0, 512, 1024, 2048)):
        return _load_hdf5(path)
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and "\x00" not in text and "," in text.split("\n", 1)[0]:
        return _load_csv(path)
    raise ValueError(f"[plot_results] {path}: not a pcmsim results file (neither HDF5 nor "
                     f"CSV); expected {ACCEPTED}")


def _load_hdf5(path: str) -> Dict:
    try:
        import h5py
    except ImportError as e:
        raise ValueError(f"[plot_results] {path}: reading HDF5 results needs h5py (apt install "
                         "python3-h5py), or give the CSV view beside it (FILE.csv)") from e
    try:
        with h5py.File(path, "r") as f:
            return _read_hdf5(path, f)
    except KeyError as e:
        raise ValueError(f"[plot_results] {path}: incomplete results file: no {e}") from e
    except OSError as e:
        raise ValueError(f"[plot_results] {path}: cannot read it as HDF5 ({e}); "
                         f"expected {ACCEPTED}") from e


def _read_hdf5(path: str, f) -> Dict:
    kind = _text(f.attrs.get("format", ""))
    fp32 = float(f.attrs.get("fp32_accuracy", -1))
    fp32 = fp32 if fp32 >= 0 else None
    if kind == "pcmsim-sweep":
        axes = [_text(a) for a in f.attrs.get("axes", [])]
        if "points" not in f:
            raise ValueError(f"[plot_results] {path}: no finished point yet")
        pts = f["points"]
        values = {a: [_text(v) for v in pts["axis"][a][()]] for a in axes}
        trials = int(f.attrs["trials"])
        res = dict(axes=axes, values=values, mean=pts["acc_mean"][()],
                   low=pts["ci95_low"][()], high=pts["ci95_high"][()], fp32=fp32,
                   trials=trials)
        model = os.path.basename(_text(f.attrs.get("model", "")))
        res["title"] = (f"{model}, {int(f.attrs['images'])} images, "
                        f"{trials_text([trials])}")
        return _finish(res)
    if kind == "pcmsim-run":
        time = next((c for c in _RUN_TIME_COLUMNS if c in f), None)
        if time is None:
            raise ValueError(f"[plot_results] {path}: pcmsim-run file without a dataset "
                             f"{' or '.join(_RUN_TIME_COLUMNS)}")
        t = f[time][()]
        acc = np.atleast_2d(f["accuracy"][()])
        n = acc.shape[1]
        mean = acc.mean(axis=1)
        std = acc.std(axis=1, ddof=1) if n > 1 else np.zeros_like(mean)
        half = t975(n - 1) * std / math.sqrt(n) if n > 1 else np.zeros_like(mean)
        return _finish(dict(
            axes=[TIME_AXIS], values={TIME_AXIS: [repr(float(x)) for x in t]},
            mean=mean, low=mean - half, high=mean + half, fp32=fp32, trials=n,
            title=f"{int(f.attrs.get('images', 0))} images, {trials_text([n])}"))
    raise ValueError(f"[plot_results] {path}: format '{kind}' is neither pcmsim-sweep nor "
                     f"pcmsim-run; expected {ACCEPTED}")


def _load_csv(path: str) -> Dict:
    """The CSV view of a sweep (point, axes..., seed, trials, acc_mean, acc_std, ci95_low,
    ci95_high) or of a run (model, the settings, t_inference, trials, acc_mean, acc_std, ...;
    settings that vary become axes)."""
    import csv

    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = [row for row in csv.reader(f) if row]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise ValueError(f"[plot_results] {path}: cannot read it as CSV ({e}); "
                         f"expected {ACCEPTED}") from e
    if not rows:
        raise ValueError(f"[plot_results] {path}: empty file; expected {ACCEPTED}")
    header, body = [h.strip() for h in rows[0]], rows[1:]
    for line, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise ValueError(f"[plot_results] {path}: line {line} has {len(row)} fields, the "
                             f"header {len(header)}")
    col = {name: [row[i].strip() for row in body] for i, name in enumerate(header)}
    try:
        if header[:1] == ["point"] and header[-len(_SWEEP_CSV_TAIL):] == _SWEEP_CSV_TAIL:
            axes = [h for h in header[1:-len(_SWEEP_CSV_TAIL)] if h not in _RUN_COST_COLUMNS]
            return _sweep_csv(path, axes, col)
        missing = [c for c in _RUN_CSV_NEEDS if c not in col]
        if not any(c in col for c in _RUN_TIME_COLUMNS):
            missing.append(_RUN_TIME_COLUMNS[0])
        if not missing:
            return _run_csv(path, header, col)
    except ValueError as e:
        if str(e).startswith("[plot_results]"):
            raise
        raise ValueError(f"[plot_results] {path}: a value is not a number ({e})") from e
    raise ValueError(
        f"[plot_results] {path}: CSV without the columns of a pcmsim results view (a sweep's: "
        f"point, the axes, {', '.join(_SWEEP_CSV_TAIL)}; a run's: {', '.join(_RUN_CSV_NEEDS)}; "
        f"missing {', '.join(missing)}); expected {ACCEPTED}")


def _floats(values: List[str]) -> np.ndarray:
    return np.array([float(v) for v in values], dtype=float)


def _sweep_csv(path: str, axes: List[str], col: Dict[str, List[str]]) -> Dict:
    if not col["point"]:
        raise ValueError(f"[plot_results] {path}: no finished point yet")
    trials = np.array([int(float(v)) for v in col["trials"]])
    return _finish(dict(
        axes=axes, values={a: col[a] for a in axes}, mean=_floats(col["acc_mean"]),
        low=_floats(col["ci95_low"]), high=_floats(col["ci95_high"]), trials=trials,
        fp32=None, title=f"{os.path.basename(path)}, {trials_text(trials)}"))


def _run_csv(path: str, header: List[str], col: Dict[str, List[str]]) -> Dict:
    if not col["acc_mean"]:
        raise ValueError(f"[plot_results] {path}: no rows")
    mean, std = _floats(col["acc_mean"]), _floats(col["acc_std"])
    trials = np.array([int(float(v)) for v in col["trials"]])
    half = np.nan_to_num(_plot.ci95_half_width(std, trials))
    fp32 = None
    if "fp32_acc" in col:
        known = [v for v in _floats(col["fp32_acc"]) if v >= 0]  # -1: not evaluated
        fp32 = known[0] if known else None
    # Settings that vary (several runs in one table) are axes beside the time.
    axes = [c for c in header if c not in _RUN_RESULT_COLUMNS and not c.startswith("acc_trial_")
            and len(set(col[c])) > 1]
    values = {a: col[a] for a in axes}
    time = next(c for c in _RUN_TIME_COLUMNS if c in col)
    values[TIME_AXIS] = [repr(float(v)) for v in col[time]]
    models = sorted(set(col.get("model", [])))
    name = models[0] if len(models) == 1 else os.path.basename(path)
    return _finish(dict(axes=axes + [TIME_AXIS], values=values, mean=mean, low=mean - half,
                        high=mean + half, trials=trials, fp32=fp32,
                        title=f"{name}, {trials_text(trials)}"))


def _ordered(values: List[str]) -> List[str]:
    """Distinct values, numerically ordered when all are numbers."""
    distinct = list(dict.fromkeys(values))
    if all(_number(v) is not None for v in distinct):
        distinct.sort(key=float)
    return distinct


def _time_axis(ax, times: np.ndarray, compact: bool = False) -> None:
    """Log time axis with named ticks; ``compact`` (narrow panels): without '1 min' and
    '1 month' when more than three ticks would be shown."""
    ax.set_xscale("log")
    if times.size:
        lo, hi = times.min(), times.max()
        ticks = [(s, n) for s, n in _TIME_TICKS if lo / 1.5 <= s <= hi * 1.5]
        if compact and len(ticks) > 3:
            ticks = [(s, n) for s, n in ticks if n not in ("1 min", "1 month")]
        if ticks:
            ax.set_xticks([s for s, _ in ticks])
            ax.set_xticklabels([n for _, n in ticks])
    ax.set_xlabel("time after programming")


def _time_axis_name(axes: Sequence[str]) -> Optional[str]:
    """The inference-time axis among ``axes`` ('t-inference' or 't_inference'), or None."""
    return next((a for a in axes if a in TIME_AXES), None)


def _axis_label(name: str) -> str:
    """Axis label with its unit: 'time after programming (s)', 'DAC precision p_in (bits)'."""
    if name in TIME_AXES:
        return "time after programming (s)"
    canonical = name.replace("-", "_")
    if canonical in ("p_in", "p_out", "acc_bits"):
        return _plot._precision_label(canonical)
    return name


def _select(res: Dict, fixed: Dict[str, str]) -> np.ndarray:
    keep = np.ones(len(res["mean"]), dtype=bool)
    for name, value in fixed.items():
        keep &= np.array([v == value for v in res["values"][name]])
    return keep


def _facets(others: List[str], levels: Dict[str, List[str]], combos: List[tuple]):
    """How the curves (combinations of the non-time axes) are split into panels:
    (panels as [(title, [combo, ...])], index in ``others`` of the facet axis or None).

    Up to MAX_CURVES curves: one panel. More, with two or more other axes: one panel per value
    of the axis that balances panels and curves per panel best (the first on ties). More, with
    one other axis: panels of consecutive values.
    """
    if len(combos) <= MAX_CURVES or not others:
        return [("", combos)], None
    if len(others) >= 2:
        def cost(k):
            n = len(levels[others[k]])
            return max(n, math.ceil(len(combos) / n)), k
        k = min(range(len(others)), key=cost)
        axis = others[k]
        panels = [(f"{axis} = {v}", [c for c in combos if c[k] == v]) for v in levels[axis]]
        return [p for p in panels if p[1]], k
    size = math.ceil(len(combos) / math.ceil(len(combos) / MAX_CURVES))
    chunks = [combos[i:i + size] for i in range(0, len(combos), size)]
    return [(f"{others[0]} = {c[0][0]} … {c[-1][0]}" if len(c) > 1 else
             f"{others[0]} = {c[0][0]}", c) for c in chunks], None


def _label(names: Sequence[str], values: Sequence[str]) -> str:
    return ", ".join(f"{a}={v}" for a, v in zip(names, values))


def plot_time_curves(res: Dict, fig) -> None:
    """Accuracy versus time, one curve per combination of the other axes (all of them; see
    :func:`_facets` for how many curves are split into panels)."""
    from matplotlib.lines import Line2D

    time_axis = _time_axis_name(res["axes"])
    others = [a for a in res["axes"] if a != time_axis]
    levels = {a: _ordered(res["values"][a]) for a in others}
    combos = [c for c in itertools.product(*[levels[a] for a in others])
              if _select(res, dict(zip(others, c))).any()]
    panels, facet = _facets(others, levels, combos)
    inner_axes = [a for k, a in enumerate(others) if k != facet]
    inner = [tuple(v for k, v in enumerate(c) if k != facet) for c in combos]
    inner = list(dict.fromkeys(inner))  # distinct, in order

    # Looks: colour + line style by the curve's place (its inner combination when faceted by
    # an axis, so a colour means the same in every panel), marker by panel; all distinct.
    def place(j, combo):
        if facet is None:
            return j
        return inner.index(tuple(v for k, v in enumerate(combo) if k != facet))
    places = [[place(j, c) for j, c in enumerate(cs)] for _, cs in panels]
    per_panel = (max((max(pl, default=-1) for pl in places), default=-1) < 40
                 and len(panels) <= len(_plot.MARKERS))
    if per_panel:
        styles = [[_plot.series_style(j, p) for j in pl] for p, pl in enumerate(places)]
    else:  # very many curves: enumerate the looks over the whole figure
        flat = iter(_plot.series_styles(len(combos)))
        styles = [[next(flat) for _ in pl] for pl in places]

    n = len(panels)
    cols = min(n, 3 if n <= 9 else 4)
    rows = math.ceil(n / cols)
    if n > 1:
        fig.set_size_inches(3.4 * cols + 2.8, 2.7 * rows + 0.8)
        grid = fig.add_gridspec(rows, cols + 1, width_ratios=[1.0] * cols + [0.9])
    axes = []
    all_t, zero_shown = [], False
    for p, (title, cs) in enumerate(panels):
        if n == 1:
            ax = fig.add_subplot(1, 1, 1)
        else:
            ax = fig.add_subplot(grid[p // cols, p % cols],
                                 sharex=axes[0] if axes else None,
                                 sharey=axes[0] if axes else None)
        axes.append(ax)
        for combo, style in zip(cs, styles[p]):
            keep = _select(res, dict(zip(others, combo)))
            t = np.array([float(v) for v in np.array(res["values"][time_axis])[keep]])
            order = np.argsort(t)
            t = t[order]
            m, lo, hi = (res[k][keep][order] * 100 for k in ("mean", "low", "high"))
            shown = t > 0  # t = 0 has no place on a log axis
            if not shown.all() and not zero_shown:
                print("plot_results: t = 0 is not shown on the log time axis", file=sys.stderr)
                zero_shown = True
            t, m, lo, hi = t[shown], m[shown], lo[shown], hi[shown]
            ax.plot(t, m, label=_label(others, combo) or None, **style)
            if (hi > lo).any():  # one trial: no interval, no band
                ax.fill_between(t, lo, hi, color=style["color"], alpha=0.2, lw=0)
            all_t.append(t)
        if res["fp32"] is not None:
            ax.axhline(res["fp32"] * 100, color="k", ls="--", lw=1,
                       label=f"FP32 ({res['fp32'] * 100:.2f} %)")
        ax.grid(True, alpha=0.3)
        if title:
            ax.set_title(title, fontsize="small")
    times = np.concatenate(all_t) if all_t else np.array([])
    for p, ax in enumerate(axes):
        _time_axis(ax, times, compact=n > 1)
        ax.set_ylabel("top-1 accuracy (%)")
        if p + cols < n:  # a panel below shows the time axis
            ax.tick_params(labelbottom=False)
            ax.set_xlabel("")
        if p % cols:
            ax.tick_params(labelleft=False)
            ax.set_ylabel("")
    fp32 = [Line2D([], [], color="k", ls="--", lw=1, label=f"FP32 ({res['fp32'] * 100:.2f} %)")
            ] if res["fp32"] is not None else []
    note = [_note_handle(res, "band")]
    if n == 1:
        handles, _ = axes[0].get_legend_handles_labels()
        axes[0].legend(handles=handles + note, fontsize="small")
        axes[0].set_title(res["title"], fontsize="medium")
        return
    # One legend for all panels, beside them, grouped: the curves' colour + line style (the
    # inner combination, when faceted by an axis), the panels' markers, FP32, the band.
    if facet is not None and per_panel:
        curves = [Line2D([], [], color=st["color"], linestyle=st["linestyle"],
                         label=_label(inner_axes, combo))
                  for combo, st in zip(inner, (_plot.series_style(j) for j in range(len(inner))))]
        marks = [Line2D([], [], color="0.2", ls="none", marker=styles[p][0]["marker"],
                        label=title) for p, (title, _) in enumerate(panels)]
        handles = curves + marks
    else:
        handles = [line for ax in axes for line in ax.get_lines()
                   if not line.get_label().startswith(("FP32", "_"))]
    legend_ax = fig.add_subplot(grid[:, cols])
    legend_ax.axis("off")
    handles += fp32 + note
    legend_ax.legend(handles=handles, loc="upper left", fontsize="small", frameon=False,
                     ncol=math.ceil(len(handles) / (16 * rows)), borderaxespad=0)
    fig.suptitle(res["title"], fontsize="medium")


def _note_handle(res: Dict, kind: str):
    """The legend entry naming the error band ("band") or bars ("bar") of the figure."""
    return _plot._note_handle(kind, res["trials"])


def plot_heatmaps(res: Dict, fig, x_axis: str, y_axis: str, panel_axes: List[str]) -> None:
    xs, ys = _ordered(res["values"][x_axis]), _ordered(res["values"][y_axis])
    panels = list(itertools.product(*[_ordered(res["values"][a]) for a in panel_axes]))
    cols = min(len(panels), 3 if len(panels) <= 9 else 4)
    rows = math.ceil(len(panels) / cols)
    fig.set_size_inches(4.6 * cols + 0.8, 3.9 * rows)
    vmin = float(np.nanmin(res["mean"])) * 100
    vmax = float(np.nanmax(res["mean"])) * 100
    image = None
    several = bool((np.asarray(res["trials"]) > 1).any())
    for k, panel in enumerate(panels):
        ax = fig.add_subplot(rows, cols, k + 1)
        grid = np.full((len(ys), len(xs)), np.nan)
        half = np.full_like(grid, np.nan)
        fixed = dict(zip(panel_axes, panel))
        for j, y in enumerate(ys):
            for i, x in enumerate(xs):
                keep = _select(res, {**fixed, x_axis: x, y_axis: y})
                if keep.any():
                    grid[j, i] = res["mean"][keep][0] * 100
                    half[j, i] = res["half"][keep][0] * 100
        image = ax.imshow(grid, origin="lower", cmap="viridis", vmin=vmin, vmax=vmax,
                          aspect="auto")
        for j in range(len(ys)):
            for i in range(len(xs)):
                if not np.isnan(grid[j, i]):
                    text = f"{grid[j, i]:.1f}\n±{half[j, i]:.1f}" if several else \
                        f"{grid[j, i]:.1f}"  # one trial: no interval, no "± 0.0"
                    ax.text(i, j, text, ha="center",
                            va="center", fontsize="x-small",
                            color="w" if grid[j, i] < (vmin + vmax) / 2 else "k")
        ax.set_xticks(range(len(xs)))
        ax.set_xticklabels(xs)
        ax.set_yticks(range(len(ys)))
        ax.set_yticklabels(ys)
        ax.set_xlabel(_axis_label(x_axis))
        ax.set_ylabel(_axis_label(y_axis))
        title = ", ".join(f"{a}={v}" for a, v in fixed.items())
        if title:
            ax.set_title(title, fontsize="small")
    cbar = fig.colorbar(image, ax=fig.axes, shrink=0.9)
    cbar.set_label("mean top-1 accuracy (%)" if several else "top-1 accuracy (%)")
    # What the cells' "±" is (or why there is none), under the figure's title.
    note = (f"cells: mean ± 95 % CI half-width over {trials_text(res['trials'])} (Student t)"
            if several else "one trial: no confidence interval")
    if len(panels) == 1 and not panel_axes:
        fig.axes[0].set_title(f"{res['title']}\n{note}", fontsize="small")
    else:
        fig.suptitle(f"{res['title']}\n{note}", fontsize="small")


def plot_one_axis(res: Dict, fig, axis: str) -> None:
    ax = fig.add_subplot(1, 1, 1)
    xs = _ordered(res["values"][axis])
    numeric = all(_number(v) is not None for v in xs)
    m, lo, hi = [], [], []
    for x in xs:
        keep = _select(res, {axis: x})
        m.append(res["mean"][keep][0] * 100)
        lo.append(res["low"][keep][0] * 100)
        hi.append(res["high"][keep][0] * 100)
    m, lo, hi = np.array(m), np.array(lo), np.array(hi)
    pos = np.array([float(x) for x in xs]) if numeric else np.arange(len(xs))
    yerr = [m - lo, hi - m] if (hi > lo).any() else None
    ax.errorbar(pos, m, yerr=yerr, marker="o", capsize=4, label="mean")
    if not numeric:
        ax.set_xticks(pos)
        ax.set_xticklabels(xs)
    if res["fp32"] is not None:
        ax.axhline(res["fp32"] * 100, color="k", ls="--", lw=1,
                   label=f"FP32 ({res['fp32'] * 100:.2f} %)")
    ax.set_xlabel(_axis_label(axis))
    ax.set_ylabel("top-1 accuracy (%)")
    ax.grid(True, alpha=0.3)
    handles, _ = ax.get_legend_handles_labels()
    ax.legend(handles=handles + [_note_handle(res, "bar")], fontsize="small")
    ax.set_title(res["title"], fontsize="medium")


def figure_for(res: Dict, heatmap: Optional[Sequence[str]] = None):
    """The natural figure for the swept axes (see the module text)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.0, 4.4), layout="constrained") if _has_layout() else Figure((7, 4.4))
    axes = res["axes"]
    if heatmap:
        # Axes are recorded under the settings' names; the CLI's hyphenated spelling is accepted.
        heatmap = [a.replace("-", "_") if a not in axes else a for a in heatmap]
        if len(heatmap) != 2 or any(a not in axes for a in heatmap):
            raise ValueError(f"[plot_results] --heatmap {','.join(heatmap)}: needs two of the "
                             f"swept axes {axes}")
        plot_heatmaps(res, fig, heatmap[0], heatmap[1],
                      [a for a in axes if a not in heatmap])
    elif _time_axis_name(axes) is not None:
        plot_time_curves(res, fig)
    elif len(axes) >= 2:
        plot_heatmaps(res, fig, axes[-1], axes[-2], axes[:-2])
    elif len(axes) == 1:
        plot_one_axis(res, fig, axes[0])
    else:
        ax = fig.add_subplot(1, 1, 1)
        m, lo, hi = res["mean"][0] * 100, res["low"][0] * 100, res["high"][0] * 100
        yerr = [[m - lo], [hi - m]] if hi > lo else None
        ax.errorbar([0], [m], yerr=yerr, marker="o", capsize=4, label="mean")
        ax.legend(handles=[ax.containers[0], _note_handle(res, "bar")], fontsize="small")
        ax.set_xticks([])
        ax.set_ylabel("top-1 accuracy (%)")
        ax.set_title(res["title"], fontsize="medium")
    return fig


def _has_layout() -> bool:
    import matplotlib

    major, minor = (int(x) for x in matplotlib.__version__.split(".")[:2])
    return (major, minor) >= (3, 5)


def _is_tune_file(path: str) -> bool:
    """Whether ``path`` is the HDF5 results file of ``pcmsim tune``."""
    if not path.endswith((".h5", ".hdf5")):
        return False
    try:
        import h5py
        with h5py.File(path, "r") as f:
            kind = f.attrs.get("format", "")
            return (kind.decode() if isinstance(kind, bytes) else kind) == "pcmsim-tune"
    except (ImportError, OSError):
        return False


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 -m pcmsim.plot",
        description="Plot a pcmsim sweep (or run) results file: accuracy vs time with 95 % CI "
                    "bands when time is swept, else a heatmap of two axes or a curve of one; "
                    "a pcmsim tune file: accuracy vs energy with the Pareto front.")
    parser.add_argument("results", help="results file of pcmsim sweep or pcmsim run: the "
                        "HDF5 file (--out) or the CSV view beside it")
    parser.add_argument("-o", "--out", default=None, help="figure file (PNG, PDF, SVG); "
                        "default: RESULTS with the extension .png")
    parser.add_argument("--heatmap", default=None,
                        help="X,Y: draw a heatmap of these two swept axes (panels for the rest)")
    parser.add_argument("--dpi", type=int, default=150)
    args = parser.parse_args(argv)
    try:
        if _is_tune_file(args.results):  # pcmsim tune: the Pareto plot (docs/tune.md)
            from pcmsim.plot import tune_pareto  # noqa: WPS433
            fig = tune_pareto(args.results)
        else:
            res = load_results(args.results)
            fig = figure_for(res, args.heatmap.split(",") if args.heatmap else None)
    except (OSError, ValueError, KeyError) as e:
        print(f"plot_results: error: {e}", file=sys.stderr)
        return 2
    out = args.out or (args.results.rsplit(".", 1)[0] + ".png")
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    try:
        fig.savefig(out, dpi=args.dpi)
    except (OSError, ValueError) as e:  # unwritable folder, unknown extension
        print(f"plot_results: error: cannot write the figure '{out}': {e}", file=sys.stderr)
        return 2
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
