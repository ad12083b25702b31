"""Helpers of the sweep CLI tests: run pcmsim, compare two results files exactly."""
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np

SKIP = 77  # ctest SKIP_RETURN_CODE


def pcmsim():
    if len(sys.argv) < 2:
        sys.exit("usage: test_*.py PATH/TO/pcmsim")
    return sys.argv[1]


def model_args(trials=2, limit=200):
    src = os.environ.get("PCMSIM_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
    model = os.path.join(src, "zoo", "mlp.h5")
    if not os.path.exists(model):
        print("SKIP: zoo/mlp.h5 not found")
        sys.exit(SKIP)
    if not os.path.isdir("/usr/share/datasets/fashion-mnist"):
        print("SKIP: fashion-mnist data set not installed")
        sys.exit(SKIP)
    return ["--model", model, "--limit", str(limit), "--trials", str(trials)]


def mpi_launcher():
    """mpirun on loopback only (shared memory between the ranks, TCP if at all on lo); exits with
    SKIP when mpirun is not installed."""
    import shutil
    mpirun = shutil.which("mpirun")
    if not mpirun:
        print("SKIP: mpirun not found (install openmpi-bin); pcmsim runs single-process without it")
        sys.exit(SKIP)
    launcher = [mpirun, "--oversubscribe", "--mca", "btl_tcp_if_include", "lo"]
    if os.geteuid() == 0:
        launcher.insert(1, "--allow-run-as-root")
    return launcher


def run_mpi(launcher, n, args):
    """`args` on n ranks; exits with SKIP when mpirun cannot start processes here (n == 1)."""
    r = run(launcher + ["-np", str(n)] + args)
    if r.returncode != 0 and n == 1 and ("not enough slots" in r.stderr or "PMIx" in r.stderr):
        print("SKIP: mpirun cannot start processes here:\n" + r.stderr)
        sys.exit(SKIP)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"over {n} process(es)" in r.stderr, r.stderr
    return r


def tmpdir():
    return tempfile.mkdtemp(prefix="pcmsim_sweep_test_")


def run(args, **kw):
    return subprocess.run(args, capture_output=True, text=True, **kw)


def file_content(path):
    """Every attribute and dataset of an HDF5 file, as comparable Python values."""
    out = {}
    with h5py.File(path, "r") as f:
        def attrs(name, obj):
            for k, v in obj.attrs.items():
                out["@" + name + ":" + k] = v.tolist() if isinstance(v, np.ndarray) else v
        attrs("/", f)

        def visit(name, obj):
            attrs(name, obj)
            if isinstance(obj, h5py.Dataset):
                out[name] = obj[()].tolist()
        f.visititems(visit)
    return out


def assert_same_files(a, b):
    ca, cb = file_content(a), file_content(b)
    only = set(ca) ^ set(cb)
    assert not only, f"objects in only one file: {sorted(only)}"
    for key in ca:
        assert ca[key] == cb[key], f"{key} differs:\n{ca[key]}\n{cb[key]}"
    return ca
