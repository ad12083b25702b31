"""pcmsim: analog in-memory computing simulator for PCM crossbar inference.

The whole C++ library, thin and fast, from Python. Everything physical is computed in C++ (the
compiled module ``pcmsim._pcmsim``, whose names are re-exported here); this package only adds
conveniences that turn results into tables.

Configuration (keyword construction, readable repr, ``validate()`` raising ValueError with the
C++ message naming the field; enums are strings)::

    io = pcmsim.IoParams(p_in=4, p_out=6, out_noise=0.0)
    cfg = pcmsim.SimulationConfig(io=io, seed=1)
    cfg.device.pcm.drift_scale = 0.5          # nested structs are edited in place

Devices (NumPy float32 arrays in siemens)::

    model = pcmsim.make_device_model("pcm")   # or a DeviceSpec
    state = model.program(g_target)           # programming noise + drift exponents, frozen
    g_1day = model.read(state, 86400.0, key=1)   # drift + accumulated 1/f read noise
    prog = pcmsim.program_weights(W)          # a weight block (rows = inputs) on device pairs
    W_1h = pcmsim.effective_weights(prog.at_time(3600.0, key=2))

Tiles and the digital unit::

    tile = pcmsim.Tile(pcmsim.weights_to_targets(W), pcmsim.IoParams())
    y = tile.matmul(x)                        # x: (batch, rows) float32, y: (batch, cols)

Networks and evaluation::

    net = pcmsim.load_network("zoo/mlp.h5")            # or pcmsim.from_torch(module, ...)
    table = pcmsim.evaluate(net, "fashion-mnist:t10k", limit=1000, trials=3)

Arrays: inputs of hot paths must be C-contiguous float32 (used in place, never copied);
anything else raises TypeError/ValueError saying how to convert (``pcmsim.as_float32``).
Long calls release the GIL.
"""
import os as _os
import pkgutil as _pkgutil

# Installed with pip (`pip install .`, docs/python-package.md), the compiled module sits beside
# this file and the package is complete. From the source tree (`make build`, the .pth file of
# scripts/install-python.sh) the compiled module lives in the build tree
# (<build>/python/pcmsim/_pcmsim*.so) and the .py files here: both `pcmsim` folders on sys.path
# form one package. An installed package never extends itself, so it cannot pick up a build
# tree's module of another version.
if not any(_name.startswith("_pcmsim.") for _name in _os.listdir(_os.path.dirname(__file__))):
    __path__ = _pkgutil.extend_path(__path__, __name__)

try:
    from . import _pcmsim
except ImportError as _error:  # pragma: no cover - depends on the installation
    raise ImportError(
        "pcmsim: the compiled module _pcmsim was not found next to the pcmsim package. Build it "
        "(`make build`, which also runs scripts/install-python.sh) or put <build>/python on "
        "PYTHONPATH beside <source>/python, or install the package with "
        "`python3 -m pip install --no-build-isolation .` (docs/python-package.md).") from _error

from ._pcmsim import *  # noqa: F401,F403
from ._pcmsim import (  # noqa: F401  (explicit for linters and readers)
    AnalogChip, CalibrationParams, ChipSnapshot, ChipSpec, ConverterSetup, CostParams,
    CostReport, DeviceModel, DeviceReportConfig, DeviceSpec, DigitalParams, EvaluationOptions,
    GdcParams, IdealParams, IoParams, Layer, LayerMatrix, LayerPrecision, MapperOptions,
    Network, PcmParams, ProgrammedChip, RngKey, SimulationConfig, StateIndependentParams,
    TabulatedParams, Tile, UnitCellSpec, device_report_csv, device_report_rows, evaluate_result,
    load_dataset, load_network, make_device_model, network_cost, normalized_images, plan,
    save_network, utilisation_report)

import numpy as _np

# The CMake project version, compiled into the module (one place: CMakeLists.txt).
__version__ = _pcmsim.__version__


def as_float32(x):
    """``x`` as a C-contiguous float32 NumPy array (no copy when it already is one)."""
    return _np.ascontiguousarray(x, dtype=_np.float32)


def make_table(columns):
    """A pandas DataFrame of ``columns`` (dict name -> 1-D sequence) when pandas is installed,
    else the dict itself with every column a NumPy array."""
    cols = {k: _np.asarray(v) for k, v in columns.items()}
    try:
        import pandas
    except ImportError:
        return cols
    return pandas.DataFrame(cols)


def concat_tables(tables):
    """Concatenates tables from make_table (DataFrames, or dicts of arrays with the same
    columns) row-wise, e.g. the results of several evaluate() calls of a precision sweep."""
    tables = list(tables)
    if not tables:
        return make_table({})
    if not isinstance(tables[0], dict):
        import pandas
        return pandas.concat(tables, ignore_index=True)
    keys = list(tables[0].keys())
    for t in tables[1:]:
        if list(t.keys()) != keys:
            raise ValueError("[pcmsim.concat_tables] tables have different columns")
    return {k: _np.concatenate([_np.asarray(t[k]) for t in tables]) for k in keys}


def _seq(x):
    return [float(v) for v in (_np.atleast_1d(x) if not isinstance(x, (list, tuple)) else x)]


# ---- devices -------------------------------------------------------------------------------

def device_report(model="pcm", g_target_uS=(1.0, 5.0, 12.5, 25.0),
                  t_inference=(0.0, 3600.0, 86400.0, 31536000.0), samples=100000, seed=7):
    """Monte Carlo statistics of a device model, as ``pcmsim device`` computes them.

    model: a name ("pcm", "ideal", "state_independent", "tabulated"), a DeviceSpec or a
    DeviceModel. g_target_uS: target conductances in µS; t_inference: seconds after programming;
    samples: devices per target (programmed once, then snapshotted at every time); seed: as
    the CLI's --seed (default 7).

    Returns a table (DataFrame or dict of arrays) with the CLI's CSV columns
    ``model, g_target_uS, t_inference_s, samples, mean_uS, std_uS, nu_mean, nu_std``,
    one row per (target, time), targets outer.
    """
    config = DeviceReportConfig(g_targets=[g * 1e-6 for g in _seq(g_target_uS)],
                                t_inference=_seq(t_inference), samples=int(samples),
                                seed=int(seed))
    rows = device_report_rows(model, config)
    return make_table({
        "model": [r.model for r in rows],
        "g_target_uS": [r.g_target * 1e6 for r in rows],
        "t_inference_s": [r.t_inference for r in rows],
        "samples": [r.samples for r in rows],
        "mean_uS": [r.mean * 1e6 for r in rows],
        "std_uS": [r.std * 1e6 for r in rows],
        "nu_mean": [r.nu_mean for r in rows],
        "nu_std": [r.nu_std for r in rows],
    })


# ---- mapping -------------------------------------------------------------------------------

def plan_network(network, chip=None, options=None):
    """The MappingPlan of a Network's linear/conv2d layers on ``chip`` (ChipSpec, default
    256 x 256 tiles) with ``options`` (MapperOptions)."""
    return plan(network.layer_matrices(), chip if chip is not None else ChipSpec(),
                options if options is not None else MapperOptions())


def tile_occupancy(mapping_plan):
    """Per physical tile, the fraction of its cells holding a weight: a NumPy array of
    ``mapping_plan.tiles_used`` values in [0, 1] (for utilisation maps)."""
    cells = mapping_plan.chip.tile_rows * mapping_plan.chip.tile_cols
    used = _np.zeros(mapping_plan.tiles_used)
    for layer in mapping_plan.layers:
        for s in layer.slices:
            used[s.tile] += s.rows * s.cols
    return used / cells


# ---- networks ------------------------------------------------------------------------------

def from_torch(module, input_shape, **kwargs):
    """Converts a PyTorch ``nn.Module`` to a pcmsim Network (see pcmsim.torch_convert)."""
    from .torch_convert import from_torch as _from_torch
    return _from_torch(module, input_shape, **kwargs)


def _network(network):
    if isinstance(network, Network):
        return network
    return load_network(str(network))


def _data(network, data, labels, limit, where, limit_name="limit"):
    """(normalised float32 images, int64 labels, data name) from a spec string, a Dataset or
    arrays of already normalised images and labels."""
    if int(limit) != limit or limit < 0:
        raise ValueError(f"[pcmsim.{where}] {limit_name} = {limit!r}: must be an integer >= 0")
    limit = int(limit)

    def check_limit(count):
        # As the C++ loaders: a limit above the data is an error, never silently clamped.
        if limit > count:
            raise ValueError(f"[pcmsim.{where}] {limit_name} = {limit}: the data hold only "
                             f"{count} images")

    if isinstance(data, str):
        try:
            data = load_dataset(data, limit)
        except ValueError as e:  # name the caller's parameter, not the loader's limit
            if limit_name == "limit" or "limit = " not in str(e):
                raise
            raise ValueError(f"[pcmsim.{where}] {limit_name} = {limit}: {e}") from None
    if isinstance(data, _pcmsim.Dataset):
        _pcmsim.check_compatible(data, network)
        images, labels = normalized_images(data, network), data.labels
        check_limit(len(images))
        if limit:
            images, labels = _np.ascontiguousarray(images[:limit]), labels[:limit]
        return images, labels, data.name
    if labels is None:
        raise ValueError(f"[pcmsim.{where}] labels are required when images are an array")
    images = as_float32(data)  # nets::evaluate copies the images anyway
    check_limit(len(images))
    if limit:
        images, labels = images[:limit], labels[:limit]
    return images, _labels(labels, len(images), network.num_classes, where), "array"


def _labels(labels, count, num_classes, where):
    """Labels as int64 class indices: integers (floats are refused, not truncated), one per
    image, each in [0, num_classes) (never wrapped or silently counted as a miss)."""
    y = _np.asarray(labels)
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise TypeError(f"[pcmsim.{where}] labels: expected a 1-D integer array, got "
                        f"{y.dtype} of shape {y.shape}")
    if len(y) != count:
        raise ValueError(f"[pcmsim.{where}] labels: {len(y)} labels for {count} images")
    bad = _np.flatnonzero((y < 0) | (y >= num_classes))
    if len(bad):
        i = int(bad[0])
        raise ValueError(f"[pcmsim.{where}] labels[{i}] = {y[i]}: out of [0, {num_classes})")
    return y.astype(_np.int64)


# The cost totals of the results CSV (``pcmsim run``), in its order.
_COST_TOTALS = ("energy_per_inference_J", "latency_s", "inferences_per_s", "area_mm2")


def cost_table(report):
    """The per-layer costs of a CostReport (``network_cost``) as a table: layer, digital, tiles,
    tile_reads, DAC/ADC conversions, digital_ops, bytes_moved, macs, the energy parts and
    energy_J (J), latencies (s) and area_mm2, one row per mappable layer (as FILE.cost.csv)."""
    return make_table(report.layer_columns())


def results_table(result, config, model, trials=None, cost=None):
    """The table of an EvaluationResult: the columns of ``pcmsim run --format csv`` (model,
    every setting by its name, the cost totals energy_per_inference_J, latency_s,
    inferences_per_s, area_mm2 (NaN without a CostReport ``cost``), t_inference, trials,
    acc_mean, acc_std, ci95_low, ci95_high, fp32_acc), one row per inference time, plus
    acc_trial_<k> per trial."""
    times = result.times
    n = len(times)
    trials = trials if trials is not None else (len(times[0].accuracy) if times else 0)
    cols = {"model": [model] * n}
    for name, value in _pcmsim.setting_columns(config):
        cols[name] = [value] * n
    totals = cost.totals if cost is not None else {}
    for name in _COST_TOTALS:
        cols[name] = [totals.get(name, float("nan"))] * n
    summaries = [_pcmsim.summarize(list(t.accuracy)) for t in times]
    cols.update({
        "t_inference": [t.t_inference for t in times],
        "trials": [trials] * n,
        "acc_mean": [t.mean for t in times],
        "acc_std": [t.std for t in times],
        "ci95_low": [s[2] for s in summaries],
        "ci95_high": [s[3] for s in summaries],
        "fp32_acc": [result.fp32_accuracy] * n,
    })
    for k in range(trials):
        cols[f"acc_trial_{k}"] = [t.accuracy[k] for t in times]
    return make_table(cols)


def evaluate(network, data="fashion-mnist:t10k", labels=None, config=None, options=None, *,
             limit=0, calibration_data="fashion-mnist:train", progress=None, model_name=None,
             out=None, cost_params=None, **option_fields):
    """Accuracy of a network on simulated PCM chips over inference times and Monte Carlo
    trials, beside its FP32 accuracy (what ``pcmsim run`` computes, same numbers for the same
    configuration and seed).

    network: a Network or a model file path. data: a data-set spec ("fashion-mnist:t10k", an
    HDF5 data set path, ...), a Dataset, or normalised float32 images (N, C*H*W) with ``labels``.
    limit: first N images (0 = all). config: SimulationConfig (default: PCM, 8-bit, GDC on,
    seed 0). options: EvaluationOptions; its fields may also be given as keywords
    (t_inference=[...] seconds, trials=5, batch_size=256, calibration_images=256, fp32=True).
    calibration_data: used when config.calibrate (first options.calibration_images images).
    progress: None or a callable progress(done, total, what).

    out: a results file path (.h5): written as ``pcmsim run --out`` writes it (the
    configuration structs, the accuracies, and the CSV view beside it); checked before any work.

    cost_params: the cost model's constants (CostParams, default: the HERMES calibration); the
    cost of one inference (``network_cost``) is added to the table and the results file, except
    for ideal converters (p_in or p_out 0), which have no defined cost.

    Returns a table (pandas DataFrame if installed, else a dict of NumPy arrays), one row per
    inference time, with the columns of the results CSV (model, every setting, the cost totals,
    t_inference, trials, acc_mean, acc_std, ci95_low, ci95_high, fp32_acc) and acc_trial_0,
    acc_trial_1, ...
    """
    net = _network(network)
    config = config if config is not None else SimulationConfig()
    options = options.copy() if options is not None else EvaluationOptions()
    for key, value in option_fields.items():
        if not hasattr(options, key):
            raise TypeError(f"[pcmsim.evaluate] unknown keyword '{key}'")
        setattr(options, key, value)
    if out is not None:
        _pcmsim.check_results_path(str(out))
    images, y, _ = _data(net, data, labels, limit, "evaluate")
    calibration = None
    if config.calibrate:
        if isinstance(calibration_data, (str, _pcmsim.Dataset)):
            calibration, _, _ = _data(net, calibration_data, None,
                                      options.calibration_images, "evaluate",
                                      "calibration_images")
        else:  # normalised images; nets::evaluate uses the first calibration_images of them
            calibration = as_float32(calibration_data)
    cost_params = cost_params if cost_params is not None else CostParams()
    cost_params.validate()
    cost = None if _pcmsim.uncostable_reason(net, config) else network_cost(net, config,
                                                                           cost_params)
    result = evaluate_result(net, images, y, config, options, calibration, progress)
    name = model_name or net.name or (str(network) if not isinstance(network, Network) else "")
    if out is not None:
        # Data given as arrays or a Dataset have no spec to record.
        write_run_results(str(out), result, config, options,
                          model=str(network) if not isinstance(network, Network) else "",
                          model_name=name, data=data if isinstance(data, str) else "",
                          calibration_data=calibration_data
                          if isinstance(calibration_data, str) else "", limit=limit,
                          cost_params=cost_params, cost=cost)
    return results_table(result, config, name, options.trials, cost)


def accuracy(network, data="fashion-mnist:t10k", labels=None, *, limit=0, batch_size=128):
    """FP32 top-1 accuracy of a network on a data set (spec, Dataset or normalised arrays)."""
    net = _network(network)
    images, y, _ = _data(net, data, labels, limit, "accuracy")
    pred = _pcmsim.fp32_predict(net, as_float32(images), batch_size)
    return float(_np.mean(pred == y))


def tune(network, validation_data="fashion-mnist:train", data="fashion-mnist:t10k", *,
         validation_labels=None, labels=None, limit=0, config=None, cost_params=None,
         options=None, trials=3, t_inference=86400.0, batch_size=256, calibration_images=256,
         calibration_data="fashion-mnist:train", progress=None, **option_fields):
    """The mixed-precision search of ``pcmsim tune`` (docs/tune.md): per-layer converter bits
    (p_in, p_out), or the layer kept digital, of least energy per inference whose accuracy at
    ``t_inference`` stays within ``budget`` points of FP32 (one-sided 95 % upper confidence bound
    of the mean drop, over ``trials`` and the validation images), searched on the last
    ``validation_images`` images of ``validation_data`` (the training set), then measured with
    the uniform points on ``data`` (first ``limit`` images; None: no test phase).

    network: a Network or model path. validation_data / data: a spec, a Dataset, or normalised
    images with ``validation_labels`` / ``labels``. options: TuneOptions; its fields may be given
    as keywords (budget=1.0, candidate_bits=[8, 6, 5, 4, 3], uniform_bits=[8, 6, 4],
    tune_layers=[], validation_images=1000, allow_digital=True). config: SimulationConfig; cost_params: CostParams.

    Returns a TuneResult (``candidates``, ``best``, ``test``, ``layer_precision_option``, ...).
    Not journalled: use ``pcmsim tune --out`` for a resumable search.
    """
    net = _network(network)
    config = config if config is not None else SimulationConfig()
    options = options.copy() if options is not None else TuneOptions()
    for key, value in option_fields.items():
        if not hasattr(options, key):
            raise TypeError(f"[pcmsim.tune] unknown keyword '{key}'")
        setattr(options, key, value)
    options.validate()
    evaluation = EvaluationOptions(trials=trials, t_inference=[float(t_inference)],
                                   batch_size=batch_size, calibration_images=calibration_images)
    evaluation.validate()
    val, val_y, _ = _data(net, validation_data, validation_labels, 0, "tune")
    n = int(options.validation_images)
    if n > len(val):
        raise ValueError(f"[pcmsim.tune] validation_images = {n}: the validation data hold only "
                         f"{len(val)} images")
    val, val_y = _np.ascontiguousarray(val[-n:]), _np.asarray(val_y)[-n:]
    test = test_y = None
    if data is not None:
        test, test_y, _ = _data(net, data, labels, limit, "tune")
    calibration = None
    if config.calibrate:
        calibration, _, _ = _data(net, calibration_data, None, calibration_images, "tune",
                                  "calibration_images")
    cost_params = cost_params if cost_params is not None else CostParams()
    return tune_result(net, val, val_y, test, test_y, config, evaluation, options, cost_params,
                       calibration, progress)


def read_tune(path):
    """A ``pcmsim tune`` results file as a dict: attributes (``budget``, ``layer_precision``,
    ``run_options``, ``fp32_validation_accuracy``, ``fp32_test_accuracy``, ...) and the tables
    ``candidates`` (every validation candidate: phase, label, layer_precision,
    energy_per_inference_J, acc_mean, acc_std, ci95_low, ci95_high, drop_mean, drop_bound,
    within_budget, accepted, pareto), ``test`` and ``pareto`` (indices into candidates, by
    energy). Needs h5py."""
    import h5py

    def text(v):
        return v.decode() if isinstance(v, bytes) else v

    out = {}
    with h5py.File(path, "r") as f:
        if text(f.attrs.get("format", "")) != "pcmsim-tune":
            raise ValueError(f"[pcmsim.read_tune] {path}: not a pcmsim-tune results file")
        for k, v in f.attrs.items():
            if isinstance(v, _np.ndarray):
                out[k] = [text(x) for x in v.tolist()]
            elif isinstance(v, _np.generic):
                out[k] = text(v.item())
            else:
                out[k] = text(v)
        for group in ("candidates", "test"):
            if group in f:
                cols = {}
                for k, d in f[group].items():
                    a = d[()]
                    cols[k] = [text(x) for x in a] if a.dtype.kind in "OS" else a
                out[group] = cols
        out["pareto"] = f["pareto/index"][()] if "pareto" in f else _np.zeros(0, dtype=int)
    return out
