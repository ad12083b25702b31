"""Executes every notebook in examples/notebooks with `jupyter nbconvert --to notebook --execute`
(as CI does) and checks that it ran without error and (re)wrote the PNG figures it names.

The kernel is Debian's python3 kernel; it inherits this process's environment, so PYTHONPATH
(set by scripts/run-python-tests.sh to the build tree's module) reaches the notebooks. The
executed copies go to a temporary folder, so the committed notebooks stay clean; the figures
are written next to the notebooks (the notebook's folder is the kernel's working directory).
"""

import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import time

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
NOTEBOOK_DIR = REPO / "examples" / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
# Per notebook; each is meant to run in well under a minute, this only stops a hung kernel.
TIMEOUT_S = 600

PNG_NAME = re.compile(r"""["']([\w.-]+\.png)["']""")


def _nbconvert():
    exe = shutil.which("jupyter-nbconvert")
    if exe:
        return [exe]
    try:
        import nbconvert  # noqa: F401
    except ImportError:
        return None
    return [sys.executable, "-m", "nbconvert"]


def _code(nb):
    return "\n".join("".join(c["source"]) if isinstance(c["source"], list) else c["source"]
                     for c in nb["cells"] if c["cell_type"] == "code")


def test_there_are_notebooks():
    names = {p.name for p in NOTEBOOKS}
    for expected in ("01_pcm_device_physics.ipynb", "02_zoo_network_over_a_year.ipynb",
                     "03_how_many_bits.ipynb", "04_bring_your_own_pytorch_model.ipynb",
                     "05_bring_your_own_device_table.ipynb",
                     "06_cells_at_equal_converter_bits.ipynb",
                     "07_make_your_own_network_robust.ipynb"):
        assert expected in names


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_committed_clean(notebook):
    nb = json.loads(notebook.read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert not cell.get("outputs"), f"{notebook.name}: commit notebooks without outputs"
    assert nb["metadata"]["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(notebook, tmp_path):
    cmd = _nbconvert()
    if cmd is None:
        pytest.skip("jupyter-nbconvert is not installed (apt-get install jupyter-nbconvert)")
    nb = json.loads(notebook.read_text())
    if re.search(r"^import torch", _code(nb), re.M):
        # PyTorch is an optional dependency of pcmsim (python3-torch); notebooks 04 and 07 need it.
        pytest.importorskip("torch",
                            reason="PyTorch is not installed (apt-get install python3-torch)")
    figures = sorted(set(PNG_NAME.findall(_code(nb))))
    assert figures, f"{notebook.name} saves no PNG figure"

    start = time.time()
    proc = subprocess.run(
        cmd + ["--to", "notebook", "--execute", "--output-dir", str(tmp_path),
               f"--ExecutePreprocessor.timeout={TIMEOUT_S}",
               "--ExecutePreprocessor.kernel_name=python3", str(notebook)],
        capture_output=True, text=True, env=dict(os.environ, MPLBACKEND="Agg"),
        timeout=TIMEOUT_S + 60)
    elapsed = time.time() - start
    assert proc.returncode == 0, f"{notebook.name} failed:\n{proc.stderr[-6000:]}"

    executed = json.loads((tmp_path / notebook.name).read_text())
    for cell in executed["cells"]:
        for out in cell.get("outputs", []):
            assert out.get("output_type") != "error", f"{notebook.name}: {out.get('ename')}"
    for name in figures:
        path = NOTEBOOK_DIR / name
        assert path.is_file(), f"{notebook.name} did not write {name}"
        # Written by this run (1 s slack for file systems with coarse timestamps).
        assert path.stat().st_mtime >= start - 1, f"{name} is stale: not rewritten by the run"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{name} is not a PNG"
    print(f"{notebook.name}: {elapsed:.1f} s, figures {', '.join(figures)}")
