"""Matplotlib figures for pcmsim results.

Every function takes plain data (NumPy arrays, dicts of arrays, pandas DataFrames, or the
parsed JSON / Python objects of a mapping plan) and returns a ``matplotlib.figure.Figure``.
Figures are built without pyplot, so they work headless (no display, no global figure list to
leak) and show once when returned as the last expression of a notebook cell. Save them with
``fig.savefig("name.png", dpi=...)``.

Tables: accuracy functions accept either a summary table (one row per point, columns
``acc_mean``, ``acc_std`` and ``trials``) or a long table (one row per Monte Carlo trial, column
``accuracy``), which is summarised here (mean and sample standard deviation over trials).
Recognised column names:

=========  ==========================================================
time       ``t_inference_s``, ``t_inference``, ``time_s``, ``t``
mean       ``acc_mean``, ``accuracy_mean``, ``mean``
std        ``acc_std``, ``accuracy_std``, ``std``
n trials   ``trials``, ``n_trials`` (summary tables)
CI         ``ci95_low`` and ``ci95_high`` (optional, summary tables)
trials     ``accuracy`` (1-D long form, or 2-D ``[point, trial]``)
FP32       ``fp32_accuracy``, ``fp32_acc`` (scalar or constant column)
=========  ==========================================================

Accuracies are fractions in [0, 1] and are drawn in percent.

Error bands and bars are always the 95 % confidence interval of the mean over the Monte Carlo
trials (Student t with n - 1 degrees of freedom: mean ± t(0.975, n-1)·std/√n, as
``pcmsim sweep`` writes it), clipped to the valid range [0, 100] %, and the figure's legend says
so ("shaded: 95 % CI of the mean over N trials"). One trial has no interval: no band is drawn and
the legend says "1 trial". A summary table without a trial count has no band either (warning).

``python3 -m pcmsim.plot RESULTS.h5 -o FIG.png`` plots a results file of ``pcmsim sweep`` or
``pcmsim run``, or the CSV view written beside it (see ``main``; exit code 2 on bad input).
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle

__all__ = [
    "conductance_histograms",
    "accuracy_vs_time",
    "accuracy_vs_precision",
    "accuracy_vs_energy",
    "tune_pareto",
    "precision_heatmap",
    "tile_utilisation_map",
    "format_time",
    "table_columns",
    "summarise",
    "t975",
    "ci95_half_width",
    "trials_text",
    "error_note",
    "series_styles",
    "main",
]

# Named times for the log time axis (seconds).
_TIME_TICKS = [
    (1.0, "1 s"),
    (60.0, "1 min"),
    (3600.0, "1 h"),
    (86400.0, "1 day"),
    (7 * 86400.0, "1 week"),
    (30 * 86400.0, "1 month"),
    (365 * 86400.0, "1 year"),
    (10 * 365 * 86400.0, "10 years"),
]

_TIME_NAMES = ("t_inference_s", "t_inference", "time_s", "t")
_MEAN_NAMES = ("acc_mean", "accuracy_mean", "mean")
_STD_NAMES = ("acc_std", "accuracy_std", "std")
_TRIAL_NAMES = ("accuracy",)
_FP32_NAMES = ("fp32_accuracy", "fp32_acc", "fp32")
_NTRIALS_NAMES = ("trials", "n_trials")
_CI_LOW_NAMES = ("ci95_low",)
_CI_HIGH_NAMES = ("ci95_high",)

# Two-sided 95 % Student t quantiles for 1..30 degrees of freedom (as nets/sweep.cpp).
_T975 = [12.7062047, 4.30265273, 3.18244631, 2.77644511, 2.57058184, 2.44691185, 2.36462425,
         2.30600414, 2.26215716, 2.22813885, 2.20098516, 2.17881283, 2.16036866, 2.14478669,
         2.13144955, 2.11990530, 2.10981558, 2.10092204, 2.09302405, 2.08596345, 2.07961384,
         2.07387307, 2.06865761, 2.06389856, 2.05953855, 2.05552944, 2.05183052, 2.04840714,
         2.04522964, 2.04227246]

# Colour-bar label of precision_heatmap(relative=True): the cells show the same quantity.
HEATMAP_GAP_LABEL = "top-1 accuracy − FP32 (percentage points)"


def _show_figures_in_ipython() -> None:
    """Lets IPython/Jupyter render the returned Figures (built without pyplot) as PNG.

    Jupyter's inline backend registers its PNG formatter only once pyplot is imported; a
    notebook that uses only this module would otherwise show "<Figure size ...>".
    """
    import sys

    if "IPython" not in sys.modules:
        return
    try:
        from IPython import get_ipython
        shell = get_ipython()
        formatter = shell.display_formatter.formatters["image/png"]
    except (ImportError, AttributeError, KeyError):
        return  # not in an IPython shell with rich display
    try:
        formatter.lookup_by_type(Figure)
        return  # the inline backend (or the user) already renders Figures
    except KeyError:
        pass

    def _png(fig):
        import io
        buf = io.BytesIO()
        fig.savefig(buf, format="png", bbox_inches="tight")
        return buf.getvalue()

    formatter.for_type(Figure, _png)


_show_figures_in_ipython()


# --------------------------------------------------------------------------------------------
# Statistics and wording


def t975(dof: int) -> float:
    """Two-sided 95 % quantile of Student's t with ``dof`` >= 1 degrees of freedom (table up to
    30, Cornish-Fisher expansion beyond; as nets/sweep.cpp)."""
    if dof < 1:
        raise ValueError(f"[plot] dof = {dof}: must be >= 1")
    if dof <= 30:
        return _T975[dof - 1]
    z, v = 1.959963984540054, float(dof)
    return (z + (z**3 + z) / (4 * v) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * v * v)
            + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * v**3))


def ci95_half_width(std: Any, trials: Any) -> np.ndarray:
    """Half-width of the 95 % CI of the mean, t(0.975, n-1)·std/√n, per point: 0 for one trial,
    NaN where the number of trials is unknown (0)."""
    std = np.asarray(std, dtype=float)
    n = np.broadcast_to(np.asarray(trials, dtype=int), std.shape)
    half = np.full(std.shape, np.nan)
    half[n == 1] = 0.0
    for k in np.unique(n[n > 1]):
        sel = n == k
        half[sel] = t975(int(k) - 1) * std[sel] / math.sqrt(k)
    return half


def trials_text(trials: Any) -> str:
    """'1 trial', '5 trials', '3–5 trials' (several counts), '' when none is known."""
    counts = sorted({int(n) for n in np.atleast_1d(np.asarray(trials)).ravel() if n > 0})
    if not counts:
        return ""
    if len(counts) == 1:
        return f"{counts[0]} trial" + ("" if counts[0] == 1 else "s")
    return f"{counts[0]}–{counts[-1]} trials"


def error_note(trials: Any, kind: str = "band") -> str:
    """The legend text naming the error band or bars of a figure drawn from points with these
    trial counts: "shaded: 95 % CI of the mean over 5 trials (Student t)", "1 trial: no error
    band", ... ``kind``: ``"band"`` or ``"bar"``."""
    n = np.atleast_1d(np.asarray(trials, dtype=int)).ravel()
    what, noun = ("shaded", "error band") if kind == "band" else ("error bars", "error bars")
    several = n[n > 1]
    if several.size:
        text = f"{what}: 95 % CI of the mean over {trials_text(several)} (Student t)"
        if (n == 1).any():
            text += "; 1 trial: none"
        return text
    if (n == 1).any():
        return f"1 trial: no {noun}"
    return f"no {noun}: number of trials unknown"


# Distinct looks for many series: 10 colours x 4 line styles x 10 markers.
LINESTYLES = ("-", "--", "-.", ":")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "*")


def series_style(index: int, group: int = 0) -> Dict[str, str]:
    """Look of series ``index`` (colour, then line style after 10) in marker group ``group``
    (e.g. a panel of small multiples): distinct for index < 40 and group < 10."""
    return dict(color=f"C{index % 10}", linestyle=LINESTYLES[(index // 10) % len(LINESTYLES)],
                marker=MARKERS[group % len(MARKERS)])


def series_styles(n: int) -> List[Dict[str, str]]:
    """``n`` looks (``color``, ``linestyle``, ``marker``), pairwise distinct up to 400 series:
    the colour varies fastest, then the line style, then the marker. The first 10 are the
    default colours, solid, with circles."""
    return [series_style(i % 40, i // 40) for i in range(n)]


# --------------------------------------------------------------------------------------------
# Tables


def table_columns(table: Any) -> Dict[str, np.ndarray]:
    """Columns of ``table`` as a dict of NumPy arrays.

    Accepts a pandas DataFrame, a mapping of column name to array-like (scalars are kept as
    0-d arrays), a NumPy structured array, or an object with a ``to_dict()`` / ``columns``
    interface. Raises ``TypeError`` for anything else.
    """
    if isinstance(table, np.ndarray) and table.dtype.names:
        return {name: np.asarray(table[name]) for name in table.dtype.names}
    columns = getattr(table, "columns", None)
    if columns is not None and hasattr(table, "__getitem__") and not isinstance(table, Mapping):
        # pandas.DataFrame (checked by duck typing: pandas is optional)
        return {str(c): np.asarray(table[c]) for c in columns}
    if isinstance(table, Mapping):
        return {str(k): np.asarray(v) for k, v in table.items()}
    raise TypeError(
        f"[plot] expected a table (dict of arrays, DataFrame or structured array), "
        f"got {type(table).__name__}")


def _find(cols: Mapping[str, np.ndarray], names: Sequence[str], what: str,
          required: bool = True) -> Optional[str]:
    for name in names:
        if name in cols:
            return name
    if required:
        raise KeyError(f"[plot] table has no {what} column (looked for {', '.join(names)}; "
                       f"has {', '.join(sorted(cols)) or 'none'})")
    return None


def _fp32_from(cols: Mapping[str, np.ndarray]) -> Optional[float]:
    name = _find(cols, _FP32_NAMES, "FP32", required=False)
    if name is None:
        return None
    values = np.asarray(cols[name], dtype=float).ravel()
    values = values[np.isfinite(values) & (values >= 0)]  # -1 means "not evaluated"
    return float(values[0]) if values.size else None


def summarise(table: Any, keys: Sequence[str]) -> Dict[str, np.ndarray]:
    """Mean and spread of the accuracy for each distinct combination of ``keys`` columns.

    Returns a dict with one array per key (the distinct values, sorted), ``acc_mean``,
    ``acc_std``, ``trials`` (number of trials behind each point; 0 when the table was
    already a summary without that information), and ``ci95_low`` / ``ci95_high``: the 95 %
    confidence interval of the mean (Student t), clipped to [0, 1]; equal to the mean for one
    trial, NaN when the number of trials is unknown.

    A summary table (``acc_mean`` present) is passed through (sorted by the keys; its
    ``ci95_low``/``ci95_high`` columns are used when present); a long table is grouped; a 2-D
    ``accuracy`` ``[point, trial]`` is reduced along the trials.
    The standard deviation is the sample one (ddof = 1), 0 for a single trial.
    """
    cols = table_columns(table)
    key_names = []
    for key in keys:
        if key == "time":
            key_names.append(_find(cols, _TIME_NAMES, "time"))
        else:
            if key not in cols:
                raise KeyError(f"[plot] table has no '{key}' column "
                               f"(has {', '.join(sorted(cols))})")
            key_names.append(key)

    mean_name = _find(cols, _MEAN_NAMES, "mean accuracy", required=False)
    trial_name = _find(cols, _TRIAL_NAMES, "accuracy", required=False)
    if mean_name is None and trial_name is None:
        raise KeyError(f"[plot] table has neither a mean accuracy column "
                       f"({', '.join(_MEAN_NAMES)}) "
                       f"nor per-trial accuracies ('accuracy'); has {', '.join(sorted(cols))}")

    key_arrays = [np.asarray(cols[k]).ravel() for k in key_names]
    n = len(key_arrays[0]) if key_arrays else None

    given_ci = None
    if mean_name is not None:
        mean = np.asarray(cols[mean_name], dtype=float).ravel()
        std_name = _find(cols, _STD_NAMES, "std", required=False)
        std = (np.asarray(cols[std_name], dtype=float).ravel() if std_name
               else np.zeros_like(mean))
        trials = np.zeros(mean.shape, dtype=int)
        ntrials_name = _find(cols, _NTRIALS_NAMES, "trial count", required=False)
        if trial_name is not None and np.ndim(cols[trial_name]) == 2:
            trials = np.full(mean.shape, np.shape(cols[trial_name])[1])
        elif ntrials_name is not None:
            trials = np.broadcast_to(np.asarray(cols[ntrials_name], dtype=int).ravel(),
                                     mean.shape).copy()
        low_name = _find(cols, _CI_LOW_NAMES, "CI", required=False)
        high_name = _find(cols, _CI_HIGH_NAMES, "CI", required=False)
        if low_name is not None and high_name is not None:
            given_ci = (np.asarray(cols[low_name], dtype=float).ravel(),
                        np.asarray(cols[high_name], dtype=float).ravel())
    else:
        acc = np.asarray(cols[trial_name], dtype=float)
        if acc.ndim == 2:
            mean = acc.mean(axis=1)
            std = acc.std(axis=1, ddof=1) if acc.shape[1] > 1 else np.zeros(acc.shape[0])
            trials = np.full(acc.shape[0], acc.shape[1])
        else:
            acc = acc.ravel()
            if n is not None and len(acc) != n:
                raise ValueError(f"[plot] column '{trial_name}' has {len(acc)} rows, "
                                 f"key columns have {n}")
            if not key_arrays:
                groups = {(): acc}
            else:
                groups = {}
                for i, combo in enumerate(zip(*key_arrays)):
                    groups.setdefault(combo, []).append(acc[i])
            combos = list(groups)
            mean = np.array([np.mean(groups[c]) for c in combos])
            std = np.array([np.std(groups[c], ddof=1) if len(groups[c]) > 1 else 0.0
                            for c in combos])
            trials = np.array([len(groups[c]) for c in combos])
            key_arrays = [np.array([c[j] for c in combos]) for j in range(len(key_names))]

    for name, arr in zip(key_names, key_arrays):
        if len(arr) != len(mean):
            raise ValueError(f"[plot] column '{name}' has {len(arr)} rows, "
                             f"accuracy has {len(mean)}")
    if given_ci is not None:
        low, high = given_ci
    else:
        half = ci95_half_width(std, trials)
        low, high = mean - half, mean + half
    low, high = np.clip(low, 0.0, 1.0), np.clip(high, 0.0, 1.0)  # NaN stays NaN
    order = np.lexsort(tuple(reversed(key_arrays))) if key_arrays else np.arange(len(mean))
    out = {name: arr[order] for name, arr in zip(keys, key_arrays)}
    out.update(acc_mean=mean[order], acc_std=std[order], trials=trials[order],
               ci95_low=low[order], ci95_high=high[order])
    return out


def format_time(seconds: float) -> str:
    """Short human label of a time in seconds: '0 s', '20 s', '1 h', '1 day', '1 year', ..."""
    s = float(seconds)
    if s == 0:
        return "0 s"
    for value, label in reversed(_TIME_TICKS):
        if math.isclose(s, value, rel_tol=1e-9):
            return label
    units = [(365 * 86400.0, "year"), (86400.0, "day"), (3600.0, "h"), (60.0, "min"), (1.0, "s")]
    for value, unit in units:
        if abs(s) >= value:
            q = s / value
            text = f"{q:.3g}"
            if unit in ("year", "day") and text != "1":
                unit += "s"
            return f"{text} {unit}"
    return f"{s:.3g} s"


def _log_time_axis(ax, times: np.ndarray) -> None:
    ax.set_xscale("log")
    positive = times[times > 0]
    if positive.size == 0:
        return
    lo, hi = positive.min(), positive.max()
    # No "1 week" tick: it would overlap "1 month" on a log axis.
    ticks = [(v, name) for v, name in _TIME_TICKS
             if lo / 1.5 <= v <= hi * 1.5 and name != "1 week"]
    if len(ticks) >= 2:
        ax.set_xticks([v for v, _ in ticks])
        ax.set_xticklabels([name for _, name in ticks])
        ax.minorticks_off()
    ax.set_xlim(lo / 2, hi * 2)


def _note_handle(errors: str, trials: Any):
    """A legend entry naming the error band/bars (None for errors="none")."""
    from matplotlib.lines import Line2D

    if errors == "none":
        return None
    n = np.asarray(trials, dtype=int)
    label = error_note(n, errors)
    if not (n > 1).any():  # nothing drawn: text only
        return Line2D([], [], ls="none", marker="none", label=label)
    if errors == "band":
        return Patch(facecolor="0.5", alpha=0.3, lw=0, label=label)
    return Line2D([], [], color="0.3", ls="none", marker="|", markersize=10, label=label)


def _legend(ax, note=None) -> None:
    """Legend in drawing order with the FP32 reference after the curves (errorbar handles
    would go last) and the note naming the error band/bars at the end."""
    handles, labels = ax.get_legend_handles_labels()
    if note is not None:
        handles, labels = handles + [note], labels + [note.get_label()]
    if not handles:
        return
    order = sorted(range(len(labels)),
                   key=lambda i: (handles[i] is note, labels[i].startswith("FP32")))
    kw = dict(fontsize="small")
    series = sum(h is not note and not lab.startswith("FP32") for h, lab in zip(handles, labels))
    if series > 10:  # many series: beside the axes, in columns of up to 20 entries
        kw.update(loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False,
                  ncol=math.ceil(len(handles) / 20))
    ax.legend([handles[i] for i in order], [labels[i] for i in order], **kw)


def _legend_width(series: int) -> float:
    """Extra figure width (inches) for the legend beside the axes that _legend draws when
    there are many series (+ FP32 + the band note)."""
    return 0.0 if series <= 10 else 2.4 * math.ceil((series + 2) / 20)


def _accuracy_curve(ax, x, m, lo, hi, errors: str, style: Mapping[str, str],
                    label: str) -> None:
    """One accuracy curve (%): markers, with the CI [lo, hi] as error bars, a band or nothing.
    Points whose CI is NaN (trials unknown) or empty (one trial) get no bar/band."""
    has_ci = np.isfinite(lo) & np.isfinite(hi) & (hi > lo)
    if errors == "bar":
        yerr = None
        if has_ci.any():
            yerr = np.where(has_ci, [m - lo, hi - m], 0.0)
            yerr = np.maximum(yerr, 0.0)
        ax.errorbar(x, m, yerr=yerr, capsize=3, label=label or None, **style)
    else:
        ax.plot(x, m, label=label or None, **style)
        if errors == "band" and has_ci.any():
            ax.fill_between(x, np.where(has_ci, lo, m), np.where(has_ci, hi, m),
                            color=style["color"], alpha=0.2, lw=0)


def _fp32_line(ax, fp32: Optional[float]) -> None:
    """The FP32 reference accuracy (a fraction) as a dashed horizontal line, when known."""
    if fp32 is not None:
        ax.axhline(fp32 * 100, color="k", ls="--", lw=1, label=f"FP32 ({fp32 * 100:.2f} %)")


def _new_axes(ax, figsize):
    if ax is not None:
        return ax.figure, ax
    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()


# --------------------------------------------------------------------------------------------
# Conductance distributions


def conductance_histograms(conductances: Any, times: Optional[Sequence[float]] = None,
                           targets: Optional[Sequence[float]] = None, *, unit: str = "S",
                           bins: int = 60, g_max: Optional[float] = None,
                           density: bool = True) -> Figure:
    """Histograms of device conductances at several times, one panel per time.

    conductances: array ``[n_times, n_targets, n_devices]`` (one row of devices per target
        conductance), or ``[n_times, n_devices]`` (one population), or a mapping
        ``{t_seconds: array [n_targets, n_devices] or {target: array}}``.
    times: seconds after programming, one per first-axis entry (the mapping keys otherwise).
    targets: the target conductance of each population, in ``unit``; drawn as dashed lines
        and used as legend labels.
    unit: unit of the inputs: ``"S"`` (siemens, the library's unit) or ``"uS"``. Plots are in µS.
    g_max: optional upper end of the x axis, in ``unit``.
    Returns a Figure with one Axes per time, sharing the conductance axis.
    """
    if unit not in ("S", "uS"):
        raise ValueError(f"[plot.conductance_histograms] unit = {unit!r}: must be 'S' or 'uS'")
    to_us = 1e6 if unit == "S" else 1.0

    if isinstance(conductances, Mapping):
        keys = list(conductances)
        if times is None:
            times = [float(k) for k in keys]
        panels = []
        for k in keys:
            v = conductances[k]
            if isinstance(v, Mapping):
                if targets is None:
                    targets = [float(t) for t in v]
                panels.append([np.asarray(x, dtype=float).ravel() for x in v.values()])
            else:
                a = np.asarray(v, dtype=float)
                panels.append([a.ravel()] if a.ndim == 1 else [row.ravel() for row in a])
    else:
        a = np.asarray(conductances, dtype=float)
        if a.ndim == 2:
            a = a[:, None, :]
        if a.ndim != 3:
            raise ValueError(f"[plot.conductance_histograms] conductances has shape {a.shape}: "
                             "expected [n_times, n_targets, n_devices] or [n_times, n_devices]")
        panels = [[row for row in a[i]] for i in range(a.shape[0])]
    if times is None:
        times = list(range(len(panels)))
        time_labels = [f"snapshot {i}" for i in times]
    else:
        times = [float(t) for t in times]
        time_labels = [f"t = {format_time(t)}" for t in times]
    if len(times) != len(panels):
        raise ValueError(f"[plot.conductance_histograms] {len(times)} times for "
                         f"{len(panels)} snapshots")
    n_targets = len(panels[0]) if panels else 0
    if any(len(p) != n_targets for p in panels):
        raise ValueError("[plot.conductance_histograms] every time needs the same populations")
    if targets is not None and len(targets) != n_targets:
        raise ValueError(f"[plot.conductance_histograms] {len(targets)} targets for "
                         f"{n_targets} populations")

    all_values = np.concatenate([x for p in panels for x in p]) * to_us
    finite = all_values[np.isfinite(all_values)]
    lo = min(0.0, float(finite.min())) if finite.size else 0.0
    hi = float(finite.max()) if finite.size else 1.0
    if g_max is not None:
        hi = max(hi, g_max * to_us)
    edges = np.linspace(lo, hi * 1.02 if hi > 0 else 1.0, bins + 1)

    n = len(panels)
    fig = Figure(figsize=(7.0, 1.6 + 1.5 * n), layout="constrained")
    axes = fig.subplots(n, 1, sharex=True, squeeze=False)[:, 0]
    colors = [f"C{i % 10}" for i in range(n_targets)]
    for ax, pops, label in zip(axes, panels, time_labels):
        for j, x in enumerate(pops):
            x = x[np.isfinite(x)] * to_us
            name = (f"target {targets[j] * to_us:.3g} µS" if targets is not None
                    else f"population {j}")
            ax.hist(x, bins=edges, density=density, histtype="stepfilled", alpha=0.35,
                    color=colors[j], label=name)
            ax.hist(x, bins=edges, density=density, histtype="step", color=colors[j])
            if targets is not None:
                ax.axvline(targets[j] * to_us, color=colors[j], ls="--", lw=1)
        ax.set_ylabel("density (1/µS)" if density else "devices")
        ax.set_title(label, loc="left", fontsize="medium")
    axes[-1].set_xlabel("conductance (µS)")
    axes[0].legend(fontsize="small", ncol=min(n_targets, 3) or 1)
    return fig


# --------------------------------------------------------------------------------------------
# Accuracy over time


def _check_errors(where: str, errors: str) -> None:
    """The error-display choice of a plot: ValueError naming the plot and the value."""
    if errors not in ("band", "bar", "none"):
        raise ValueError(f"[plot.{where}] errors = {errors!r}: "
                         "must be 'band', 'bar' or 'none'")


def _series_axes(results: Any, by: Optional[str], ax):
    """The curves of a plot, their styles and axes widened for a legend beside them."""
    series = _as_series(results, by)
    styles = series_styles(len(series))
    fig, ax = _new_axes(ax, (6.4 + _legend_width(len(series)), 4.0))
    return series, styles, fig, ax


def _as_series(results: Any, by: Optional[str]) -> List[Tuple[str, Any]]:
    """[(label, table)]: a mapping of label -> table, or one table split by column `by`."""
    if isinstance(results, Mapping) and results and all(
            not isinstance(v, (np.ndarray, list, tuple, float, int)) and
            (isinstance(v, Mapping) or hasattr(v, "columns")) for v in results.values()):
        return [(str(k), v) for k, v in results.items()]
    if by is None:
        return [("", results)]
    cols = table_columns(results)
    if by not in cols:
        raise KeyError(f"[plot] table has no '{by}' column to split by "
                       f"(has {', '.join(sorted(cols))})")
    key = np.asarray(cols[by]).ravel()
    out = []
    for value in sorted(set(key.tolist()), key=lambda v: (str(type(v)), v)):
        mask = key == value
        sub = {k: (v[mask] if np.ndim(v) >= 1 and len(v) == len(key) else v)
               for k, v in cols.items()}
        if isinstance(value, (bool, np.bool_)):
            label = f"{_series_name(by)} on" if value else f"{_series_name(by)} off"
        elif value in ("on", "off"):
            label = f"{_series_name(by)} {value}"
        else:
            label = f"{by} = {value}"
        out.append((label, sub))
    return out


def _series_name(column: str) -> str:
    return "GDC" if column == "gdc" else column


def accuracy_vs_time(results: Any, *, by: Optional[str] = None,
                     fp32: Optional[float] = None, errors: str = "band",
                     ax=None, title: Optional[str] = None) -> Figure:
    """Top-1 accuracy versus time after programming (log time axis).

    results: one table, a mapping ``{label: table}`` (e.g. ``{"GDC on": a, "GDC off": b}``),
        or one table split into curves by column ``by`` (e.g. ``by="gdc"``).
    fp32: the FP32 digital accuracy, drawn as a dashed line (read from the tables'
        ``fp32_accuracy`` when not given).
    errors: ``"band"`` (the 95 % CI of the mean over trials, shaded), ``"bar"`` (the same as
        error bars) or ``"none"``; the legend names it (see the module text).
    Times <= 0 cannot sit on a log axis and are left out with a warning.
    Returns the Figure (the one holding ``ax`` when given).
    """
    _check_errors("accuracy_vs_time", errors)
    series, styles, fig, ax = _series_axes(results, by, ax)
    all_t, all_trials = [], []
    for i, (label, table) in enumerate(series):
        if fp32 is None:
            fp32 = _fp32_from(table_columns(table))
        s = summarise(table, ["time"])
        t, m = s["time"].astype(float), s["acc_mean"] * 100
        lo, hi, n = s["ci95_low"] * 100, s["ci95_high"] * 100, s["trials"]
        keep = t > 0
        if not keep.all():
            warnings.warn("[plot.accuracy_vs_time] times <= 0 are not shown on the log axis")
        t, m, lo, hi, n = t[keep], m[keep], lo[keep], hi[keep], n[keep]
        all_t.append(t)
        all_trials.append(n)
        _accuracy_curve(ax, t, m, lo, hi, errors, styles[i], label)
    _warn_unknown_trials("accuracy_vs_time", errors, all_trials)
    _fp32_line(ax, fp32)
    _log_time_axis(ax, np.concatenate(all_t) if all_t else np.array([]))
    ax.set_xlabel("time after programming")
    ax.set_ylabel("top-1 accuracy (%)")
    ax.grid(True, which="major", alpha=0.3)
    if title:
        ax.set_title(title)
    _legend(ax, _note_handle(errors, np.concatenate(all_trials) if all_trials else []))
    return fig


def _warn_unknown_trials(where: str, errors: str, trials: List[np.ndarray]) -> None:
    if errors != "none" and any((n <= 0).any() for n in trials):
        warnings.warn(f"[plot.{where}] the table has acc_mean but no 'trials' column: the 95 % "
                      "CI of the mean needs the number of trials; no error band drawn there")


# --------------------------------------------------------------------------------------------
# Accuracy over precision


def accuracy_vs_precision(results: Any, *, x: str = "p_out", by: Optional[str] = "p_in",
                          fp32: Optional[float] = None, errors: str = "bar", ax=None,
                          title: Optional[str] = None) -> Figure:
    """Accuracy versus converter precision: one curve per value of ``by``.

    results: a table with an integer precision column ``x`` (e.g. ``p_out``), optionally a
        column ``by`` (e.g. ``p_in``; ``by=None`` for a single curve or when absent), and
        accuracies (summary or per trial); or a mapping ``{label: table}`` of such tables.
    fp32: the FP32 accuracy, drawn dashed (read from ``fp32_accuracy`` when not given).
    errors: ``"bar"``, ``"band"`` or ``"none"`` (the 95 % CI of the mean over trials; the
        legend names it).
    """
    _check_errors("accuracy_vs_precision", errors)
    if by is not None and len(_as_series(results, None)) == 1 and \
            by not in table_columns(results):
        by = None  # one table without that column: a single curve
    series, styles, fig, ax = _series_axes(results, by, ax)
    xs, all_trials = [], []
    for i, (label, table) in enumerate(series):
        if fp32 is None:
            fp32 = _fp32_from(table_columns(table))
        s = summarise(table, [x])
        px, m = s[x].astype(float), s["acc_mean"] * 100
        xs.append(px)
        all_trials.append(s["trials"])
        _accuracy_curve(ax, px, m, s["ci95_low"] * 100, s["ci95_high"] * 100, errors,
                        styles[i], label)
    _warn_unknown_trials("accuracy_vs_precision", errors, all_trials)
    _fp32_line(ax, fp32)
    if xs:
        ticks = np.unique(np.concatenate(xs))
        if ticks.size <= 16 and np.all(ticks == np.round(ticks)):
            ax.set_xticks(ticks)
    ax.set_xlabel(_precision_label(x))
    ax.set_ylabel("top-1 accuracy (%)")
    ax.grid(True, alpha=0.3)
    if title:
        ax.set_title(title)
    _legend(ax, _note_handle(errors, np.concatenate(all_trials) if all_trials else []))
    return fig


def accuracy_vs_energy(results: Any, *, energy: str = "energy_per_inference_J",
                       by: Optional[str] = None, annotate: Optional[str] = None,
                       t_inference: Optional[float] = None, fp32: Optional[float] = None,
                       errors: str = "bar", ax=None, title: Optional[str] = None) -> Figure:
    """Accuracy versus energy per inference (the cost model, docs/cost.md): one point per
    configuration, in order of energy, one curve per value of ``by``.

    results: a table with the energy column ``energy`` (J, e.g. from ``pcmsim.evaluate`` or the
        CSV of ``pcmsim run``) and accuracies (summary or per trial), e.g. the concatenated
        tables of several runs at different converter precisions; or ``{label: table}``.
    annotate: a column whose value labels each point (e.g. ``"p_out"``).
    t_inference: the inference time (s) to plot when the table holds several.
    errors: ``"bar"``, ``"band"`` or ``"none"`` (the 95 % CI of the mean over trials; the
        legend names it). Energy is drawn in µJ, on a log axis when it spans a decade.
    """
    _check_errors("accuracy_vs_energy", errors)
    series, styles, fig, ax = _series_axes(results, by, ax)
    all_trials, all_x = [], []
    for i, (label, table) in enumerate(series):
        cols = table_columns(table)
        if energy not in cols:
            raise KeyError(f"[plot.accuracy_vs_energy] table has no '{energy}' column "
                           f"(has {', '.join(sorted(cols))})")
        time_name = _find(cols, _TIME_NAMES, "time", required=False)
        if time_name is not None:
            times = np.asarray(cols[time_name], dtype=float).ravel()
            distinct = np.unique(times)
            if t_inference is None and distinct.size > 1:
                raise ValueError("[plot.accuracy_vs_energy] the table holds several inference "
                                 f"times ({', '.join(format_time(t) for t in distinct)}): "
                                 "choose one with t_inference=")
            if t_inference is not None:
                mask = times == float(t_inference)
                if not mask.any():
                    raise ValueError(f"[plot.accuracy_vs_energy] t_inference = {t_inference}: "
                                     "not in the table")
                cols = {k: (v[mask] if np.ndim(v) >= 1 and len(v) == len(times) else v)
                        for k, v in cols.items()}
        if fp32 is None:
            fp32 = _fp32_from(cols)
        keys = [energy] + ([annotate] if annotate and annotate != energy else [])
        s = summarise(cols, keys)
        e = np.asarray(s[energy], dtype=float)
        if not np.all(np.isfinite(e) & (e > 0)):
            raise ValueError("[plot.accuracy_vs_energy] energies must be finite and > 0 "
                             "(a run with ideal converters has no cost)")
        order = np.argsort(e, kind="stable")
        x = e[order] * 1e6
        all_x.append(x)
        _accuracy_curve(ax, x, s["acc_mean"][order] * 100, s["ci95_low"][order] * 100,
                        s["ci95_high"][order] * 100, errors, styles[i], label)
        all_trials.append(s["trials"])
        if annotate:
            for xv, yv, text in zip(x, s["acc_mean"][order] * 100, s[annotate][order]):
                ax.annotate(f"{annotate} {text}", (xv, yv), textcoords="offset points",
                            xytext=(4, 4), fontsize="x-small")
    _warn_unknown_trials("accuracy_vs_energy", errors, all_trials)
    _fp32_line(ax, fp32)
    energies = np.concatenate(all_x) if all_x else np.array([])
    if energies.size and energies.max() > 10 * energies.min():
        ax.set_xscale("log")  # over a decade or more; a narrow range stays linear and readable
    ax.margins(x=0.08)  # room for the annotations of the outermost points
    ax.set_xlabel("energy per inference (µJ)")
    ax.set_ylabel("top-1 accuracy (%)")
    ax.grid(True, alpha=0.3, which="both")
    if title:
        ax.set_title(title)
    _legend(ax, _note_handle(errors, np.concatenate(all_trials) if all_trials else []))
    return fig


def tune_pareto(results: Any, *, errors: str = "bar", ax=None,
                title: Optional[str] = None) -> Figure:
    """The mixed-precision search of ``pcmsim tune`` (docs/tune.md): validation accuracy
    against energy per inference of every evaluated assignment (grey), the Pareto front (line),
    the uniform precisions, the chosen assignment (star), the test-set measurements (hollow),
    the FP32 accuracy and the budget (FP32 − budget on the validation images).

    results: a results file path (.h5, needs h5py) or the dict of ``pcmsim.read_tune``.
    errors: ``"bar"`` or ``"none"``: the 95 % CI of the mean over the trials (Student t), as the
        legend says. Energy in µJ.
    """
    _check_errors("tune_pareto", errors)
    if errors == "band":
        raise ValueError("[plot.tune_pareto] errors = 'band': scattered candidates take 'bar' "
                         "or 'none'")
    if not isinstance(results, Mapping):
        from pcmsim import read_tune  # noqa: WPS433 (imported on use: needs the module)
        results = read_tune(str(results))
    cand = results["candidates"]
    fig, ax = _new_axes(ax, (7.0, 4.8))
    e = np.asarray(cand["energy_per_inference_J"], dtype=float) * 1e6
    m = np.asarray(cand["acc_mean"], dtype=float) * 100
    lo = np.asarray(cand["ci95_low"], dtype=float) * 100
    hi = np.asarray(cand["ci95_high"], dtype=float) * 100
    trials = int(results.get("trials", 0))
    phase = list(cand["phase"])
    labels = list(cand["label"])

    def bars(sel, **style):
        x, y = e[sel], m[sel]
        yerr = None
        if errors == "bar" and trials > 1:
            yerr = np.maximum([y - lo[sel], hi[sel] - y], 0.0)
        return ax.errorbar(x, y, yerr=yerr, capsize=2, ls="none", **style)

    searched = np.array([p not in ("uniform",) for p in phase])
    bars(searched, color="0.6", marker="o", markersize=4, label="searched assignments")
    front = np.asarray(results.get("pareto", []), dtype=int)
    if front.size:
        ax.plot(e[front], m[front], color="C0", lw=1.5, marker="o", markersize=5,
                label="Pareto front (validation)")
    for k, i in enumerate([i for i, p in enumerate(phase) if p == "uniform"]):
        bars(np.array([i]), color=f"C{(k + 1) % 10}", marker="s", markersize=7, label=labels[i])
    best = int(results.get("chosen", -1))
    if 0 <= best < len(e):
        ax.plot(e[best], m[best], marker="*", color="C3", markersize=16, ls="none",
                label="chosen (validation)")
    test = results.get("test")
    if test:
        te = np.asarray(test["energy_per_inference_J"], dtype=float) * 1e6
        tm = np.asarray(test["acc_mean"], dtype=float) * 100
        tlo = np.asarray(test["ci95_low"], dtype=float) * 100
        thi = np.asarray(test["ci95_high"], dtype=float) * 100
        yerr = np.maximum([tm - tlo, thi - tm], 0.0) if errors == "bar" and trials > 1 else None
        ax.errorbar(te, tm, yerr=yerr, capsize=2, ls="none", marker="D", mfc="none",
                    color="k", markersize=6, label="test set (tuned, uniform)")
        for x, y, text in zip(te, tm, test["label"]):
            ax.annotate(text, (x, y), textcoords="offset points", xytext=(5, -10),
                        fontsize="x-small")
    fp32 = results.get("fp32_validation_accuracy")
    if fp32 is not None and fp32 >= 0:
        ax.axhline(fp32 * 100, color="k", ls="--", lw=1,
                   label=f"FP32, validation ({fp32 * 100:.2f} %)")
        budget = results.get("budget")
        if budget is not None:
            ax.axhline(fp32 * 100 - budget, color="C3", ls=":", lw=1.2,
                       label=f"budget: FP32 − {budget:g} points")
    fp32_test = results.get("fp32_test_accuracy")
    if fp32_test is not None and fp32_test >= 0:
        ax.axhline(fp32_test * 100, color="0.4", ls="-.", lw=1,
                   label=f"FP32, test ({fp32_test * 100:.2f} %)")
    if e.size and e.max() > 10 * e.min():
        ax.set_xscale("log")
    ax.set_xlabel("energy per inference (µJ)")
    ax.set_ylabel("top-1 accuracy (%)")
    ax.grid(True, alpha=0.3, which="both")
    ax.set_title(title or f"pcmsim tune: {results.get('model', '')}, "
                 f"t = {format_time(float(results.get('t_inference', 0)))}")
    _legend(ax, _note_handle(errors, np.full(1, trials)))
    return fig


def _precision_label(name: str) -> str:
    return {"p_in": "DAC precision p_in (bits)", "p_out": "ADC precision p_out (bits)",
            "p": "converter precision p_in = p_out (bits)",
            "acc_bits": "accumulator precision (bits)"}.get(name, name)


def precision_heatmap(results: Any, p_in: Optional[Sequence[int]] = None,
                      p_out: Optional[Sequence[int]] = None, *, fp32: Optional[float] = None,
                      annotate: bool = True, relative: bool = False, ax=None,
                      title: Optional[str] = None, cmap: str = "viridis") -> Figure:
    """Heat map of accuracy over DAC precision (rows, p_in) x ADC precision (columns, p_out).

    results: a table with columns ``p_in``, ``p_out`` and accuracies (summary or per trial),
        or a 2-D array ``[len(p_in), len(p_out)]`` of accuracies in [0, 1] with ``p_in`` and
        ``p_out`` given. Missing combinations are left blank.
    relative: colour and label each cell by its accuracy minus FP32, in percentage points
        (negative: below FP32), instead of its accuracy in percent (needs ``fp32``, given or
        in the table).
    annotate: write each cell's value in it (the same quantity as the colour bar).
    """
    if isinstance(results, np.ndarray) and results.dtype.names is None or isinstance(
            results, (list, tuple)):
        grid = np.asarray(results, dtype=float)
        if p_in is None or p_out is None:
            raise ValueError("[plot.precision_heatmap] a 2-D array needs p_in and p_out")
        if grid.shape != (len(p_in), len(p_out)):
            raise ValueError(f"[plot.precision_heatmap] accuracy grid has shape {grid.shape}, "
                             f"expected ({len(p_in)}, {len(p_out)}) = (len(p_in), len(p_out))")
        rows, cols = list(p_in), list(p_out)
    else:
        if fp32 is None:
            fp32 = _fp32_from(table_columns(results))
        s = summarise(results, ["p_in", "p_out"])
        rows = list(p_in) if p_in is not None else sorted(set(s["p_in"].tolist()))
        cols = list(p_out) if p_out is not None else sorted(set(s["p_out"].tolist()))
        grid = np.full((len(rows), len(cols)), np.nan)
        for a, b, m in zip(s["p_in"].tolist(), s["p_out"].tolist(), s["acc_mean"]):
            if a in rows and b in cols:
                grid[rows.index(a), cols.index(b)] = m
    if relative and fp32 is None:
        raise ValueError("[plot.precision_heatmap] relative=True needs the FP32 accuracy")

    values = (grid - fp32) * 100 if relative else grid * 100
    fig, ax = _new_axes(ax, (1.6 + 0.75 * len(cols), 1.2 + 0.6 * len(rows)))
    im = ax.imshow(np.ma.masked_invalid(values), origin="lower", cmap=cmap, aspect="auto")
    ax.set_xticks(range(len(cols)))
    ax.set_xticklabels([str(c) for c in cols])
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([str(r) for r in rows])
    ax.set_xlabel(_precision_label("p_out"))
    ax.set_ylabel(_precision_label("p_in"))
    cbar = fig.colorbar(im, ax=ax)
    cbar.set_label(HEATMAP_GAP_LABEL if relative else "top-1 accuracy (%)")
    if annotate:
        finite = values[np.isfinite(values)]
        mid = (finite.min() + finite.max()) / 2 if finite.size else 0
        # The cell labels show what the colours show: the gap (signed) or the accuracy.
        fmt = "{:+.1f}" if relative else "{:.1f}"
        for i in range(len(rows)):
            for j in range(len(cols)):
                if np.isfinite(values[i, j]):
                    ax.text(j, i, fmt.format(values[i, j]), ha="center", va="center",
                            fontsize="small", color="k" if values[i, j] > mid else "w")
    if title is None and fp32 is not None:
        title = f"FP32: {fp32 * 100:.2f} %"
    if title:
        ax.set_title(title)
    return fig


# --------------------------------------------------------------------------------------------
# Tile-utilisation map


def _get(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


_Slice = Tuple[int, int, int, int, int, int]  # layer, tile, tile_row0, tile_col0, rows, cols


def _plan_slices(plan: Any) -> Tuple[int, int, int, List[str], List[_Slice]]:
    """(tile_rows, tile_cols, tiles_used, layer names, [(layer, tile, r0, c0, rows, cols)])."""
    if isinstance(plan, str):
        import json
        plan = json.loads(plan)
    # render_json(report, plan): {"chip": {...}, "plan": {"tiles_used", "layers": [...]}}
    chip = _get(plan, "chip")
    inner = _get(plan, "plan", plan)
    if chip is None:
        chip = _get(inner, "chip")
    if chip is None:
        raise ValueError("[plot.tile_utilisation_map] plan has no 'chip' (tile shape)")
    tile_rows, tile_cols = int(_get(chip, "tile_rows")), int(_get(chip, "tile_cols"))
    layers = _get(inner, "layers")
    if layers is None:
        raise ValueError("[plot.tile_utilisation_map] plan has no 'layers'")
    names, slices = [], []
    for li, layer in enumerate(layers):
        name = _get(layer, "name")
        if name is None:
            name = _get(_get(layer, "layer", {}), "name", f"layer {li}")
        names.append(str(name))
        for s in _get(layer, "slices", []) or []:
            slices.append((li, int(_get(s, "tile")), int(_get(s, "tile_row0", 0)),
                           int(_get(s, "tile_col0", 0)), int(_get(s, "rows")),
                           int(_get(s, "cols"))))
    tiles_used = _get(inner, "tiles_used")
    tiles_used = int(tiles_used) if tiles_used is not None else (
        1 + max((s[1] for s in slices), default=-1))
    return tile_rows, tile_cols, tiles_used, names, slices


def tile_utilisation_map(plan: Any, *, columns: Optional[int] = None, annotate: bool = True,
                         ax=None, title: Optional[str] = None) -> Figure:
    """Map of a mapped network on the chip: tiles as a grid, slices coloured by layer.

    plan: the mapping plan as the bindings return it (an object with ``chip``, ``layers``
        (each with ``layer.name`` or ``name`` and ``slices``) and ``tiles_used``), or the
        parsed JSON of ``pcmsim map --json`` / ``mapping::render_json(report, &plan)`` (a dict
        with ``chip`` and ``plan``), or that JSON as a string.
    Each tile is drawn as a square of tile_rows x tile_cols cells (rows = word lines = inputs,
    downwards; columns = outputs, rightwards); each slice is a rectangle at its position on the
    tile. ``annotate`` writes each tile's utilisation (cells holding a weight / cells) in it.
    columns: tiles per row of the grid (default: about square).
    """
    tile_rows, tile_cols, tiles_used, names, slices = _plan_slices(plan)
    if tiles_used <= 0:
        raise ValueError("[plot.tile_utilisation_map] the plan uses no tile (all layers digital?)")
    if columns is None:
        columns = max(1, math.ceil(math.sqrt(tiles_used)))
    if columns < 1:
        raise ValueError(f"[plot.tile_utilisation_map] columns = {columns}: must be >= 1")
    grid_rows = math.ceil(tiles_used / columns)
    gap = 0.08
    # A tile is drawn as a unit square, its aspect kept.
    w, h = 1.0, tile_rows / tile_cols
    used = np.zeros(tiles_used)
    fig, ax = _new_axes(ax, (min(2.0 + 1.6 * columns, 16.0),
                             min(1.4 + 1.6 * grid_rows * h, 16.0)))
    for tile in range(tiles_used):
        gx, gy = tile % columns, tile // columns
        x0, y0 = gx * (w + gap), gy * (h + gap)
        ax.add_patch(Rectangle((x0, y0), w, h, facecolor="0.93", edgecolor="0.4", lw=0.8))
    layer_used = sorted(set(s[0] for s in slices))
    for li, tile, r0, c0, rows, cols in slices:
        if not 0 <= tile < tiles_used:
            raise ValueError(f"[plot.tile_utilisation_map] slice of layer '{names[li]}' on tile "
                             f"{tile}, but the plan uses {tiles_used} tiles")
        gx, gy = tile % columns, tile // columns
        x0, y0 = gx * (w + gap), gy * (h + gap)
        ax.add_patch(Rectangle((x0 + c0 / tile_cols * w, y0 + r0 / tile_rows * h),
                               cols / tile_cols * w, rows / tile_rows * h,
                               facecolor=f"C{layer_used.index(li) % 10}", edgecolor="none",
                               alpha=0.85))
        used[tile] += rows * cols
    if annotate:
        fontsize = "small" if columns <= 8 else "xx-small"
        for tile in range(tiles_used):
            gx, gy = tile % columns, tile // columns
            x0, y0 = gx * (w + gap), gy * (h + gap)
            u = used[tile] / (tile_rows * tile_cols)
            pct = f"{u * 100:.1f} %" if u < 0.0995 else f"{u * 100:.0f} %"
            ax.text(x0 + w / 2, y0 + h / 2, pct, ha="center", va="center",
                    fontsize=fontsize, color="k",
                    bbox=dict(boxstyle="round,pad=0.15", fc="w", ec="none", alpha=0.7))
            ax.text(x0 + 0.03 * w, y0 + 0.03 * h, f"{tile}", ha="left", va="top",
                    fontsize="xx-small", color="0.3")
    ax.set_xlim(-gap, columns * (w + gap))
    ax.set_ylim(grid_rows * (h + gap), -gap)  # tile 0 at the top left, rows downwards
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    for side in ax.spines.values():
        side.set_visible(False)
    total = used.sum() / (tiles_used * tile_rows * tile_cols)
    ax.set_title(title or f"{tiles_used} tiles of {tile_rows} x {tile_cols}, "
                 f"utilisation {total * 100:.1f} %")
    handles = [Patch(facecolor=f"C{k % 10}", label=names[li]) for k, li in enumerate(layer_used)]
    if handles:
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                  fontsize="small", frameon=False)
    return fig


# --------------------------------------------------------------------------------------------
# Command line


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python3 -m pcmsim.plot RESULTS.h5|RESULTS.csv -o FIG.png``: delegates to
    ``pcmsim.plot_results`` (0 when the figure is written; 2, with a message naming the file,
    when the input is not a results file or cannot be read)."""
    from pcmsim import plot_results  # noqa: WPS433 (imported on use: needs h5py)
    return int(plot_results.main(argv) or 0)


if __name__ == "__main__":
    import sys

    import matplotlib

    matplotlib.use("Agg")
    sys.exit(main())
