"""`pip install .` (pyproject.toml + setup.py, docs/python-package.md): installs pcmsim into a
fresh virtual environment, which then imports it from its own site-packages, with the CMake
project version, and computes with it.

The build reuses the build tree the other tests run against (PCMSIM_BUILD_DIR, up to date after
`make test`'s build), so the test costs a venv, pip and a no-op CMake build: 18 s on the shared
2-core machine. One thing does rebuild: the module records the git revision (with "+dirty"), so
a commit or a newly modified tracked file since the build recompiles bind_nets.cpp and relinks
the module (minutes). The file is named to run before test_notebooks.py, which rewrites the
committed figures.
`--no-index` keeps pip off the network (the runtime dependency numpy comes from Debian's
site-packages, which the venv sees); `--no-build-isolation` lets it use Debian's setuptools.
"""
import os
import subprocess
import sys

from conftest import BUILD_DIR, SOURCE_DIR, run_cli

import pcmsim

PIP_TIMEOUT_S = 300  # stops a hung build only; a warm run takes seconds


def _clean_env(**extra):
    # No PYTHONPATH: the venv must find pcmsim in its own site-packages, not the build tree.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(extra)
    return env


def test_pip_install_into_a_venv_gives_a_complete_versioned_package(tmp_path):
    venv = tmp_path / "venv"
    # --without-pip: Debian's pip (python3-pip), seen through the system site-packages, installs
    # into the venv that runs it; saves the ~15 s of copying pip into the venv.
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip",
                    str(venv)],
                   check=True, capture_output=True, timeout=PIP_TIMEOUT_S)
    python = venv / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--no-build-isolation", "--no-index",
         "--disable-pip-version-check", str(SOURCE_DIR)],
        capture_output=True, text=True, cwd=tmp_path, timeout=PIP_TIMEOUT_S,
        env=_clean_env(PCMSIM_BUILD_DIR=str(BUILD_DIR)))
    assert install.returncode == 0, install.stdout[-4000:] + install.stderr[-4000:]

    code = "\n".join([
        "import importlib.metadata, numpy as np, pcmsim",
        "print(pcmsim.__file__)",
        "print(pcmsim._pcmsim.__file__)",
        "print(pcmsim.__version__)",
        "print(importlib.metadata.version('pcmsim'))",
        # A tiny computation: a weight block on ideal device pairs reads back as itself.
        "W = np.array([[1.0, -0.5], [0.25, 0.1]], dtype=np.float32)",
        "block = pcmsim.weights_to_targets(W)",
        "print(float(np.abs(pcmsim.effective_weights(block) - W).max()))",
        "print(pcmsim.IoParams(p_in=4).p_in)",
    ])
    run = subprocess.run([str(python), "-c", code], capture_output=True, text=True,
                         cwd=tmp_path, env=_clean_env(), timeout=60)
    assert run.returncode == 0, run.stderr
    init_file, module_file, version, dist_version, error, p_in = run.stdout.split()
    site = str(venv / "lib")
    assert init_file.startswith(site), init_file            # the installed copy, ...
    assert module_file.startswith(site), module_file        # ... compiled module beside it
    assert version == dist_version == pcmsim.__version__    # one version: the package's ...
    assert float(error) < 1e-6
    assert p_in == "4"
    assert run_cli("--version").split()[:2] == ["pcmsim", version]  # ... is the CMake project's
