"""Shared fixtures of the Python binding tests: the build folder (for the C++ command), the
source tree, the zoo model and small helpers."""
import os
import pathlib
import subprocess

import numpy as np
import pytest

import pcmsim

SOURCE_DIR = pathlib.Path(__file__).resolve().parents[2]
# <build>/python/pcmsim/_pcmsim*.so -> <build>
BUILD_DIR = pathlib.Path(pcmsim._pcmsim.__file__).resolve().parents[2]
PCMSIM_BIN = BUILD_DIR / "bin" / "pcmsim"
DATA_DIR = pathlib.Path(os.environ.get("PCMSIM_TEST_DATA", SOURCE_DIR / "tests" / "data"))
ZOO_MLP = SOURCE_DIR / "zoo" / "mlp.h5"
FASHION_MNIST = pathlib.Path("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")


def run_cli(*args):
    """Runs the C++ command; returns its standard output (fails the test on a non-zero exit)."""
    if not PCMSIM_BIN.exists():
        pytest.skip(f"{PCMSIM_BIN} not built")
    proc = subprocess.run([str(PCMSIM_BIN), *map(str, args)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
