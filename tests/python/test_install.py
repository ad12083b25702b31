"""The install step: scripts/install-python.sh writes a .pth file with which Debian's Python
imports pcmsim (compiled module and pure-Python files as one package) from any directory."""
import os
import subprocess
import sys

from conftest import BUILD_DIR, SOURCE_DIR


def test_pth_file_makes_pcmsim_importable_from_anywhere(tmp_path):
    site_dir = tmp_path / "site"
    env = dict(os.environ, PCMSIM_SITE_DIR=str(site_dir))
    proc = subprocess.run([str(SOURCE_DIR / "scripts" / "install-python.sh"), str(BUILD_DIR),
                           sys.executable], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    lines = (site_dir / "pcmsim.pth").read_text().split()
    assert lines == [str(BUILD_DIR / "python"), str(SOURCE_DIR / "python")]
    # A fresh interpreter in an unrelated folder, without PYTHONPATH, reading only that .pth.
    clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    code = ("import site, sys; site.addsitedir(sys.argv[1]); import pcmsim; "
            "import pcmsim.torch_convert; "
            "print(pcmsim.__file__); print(pcmsim._pcmsim.__file__); "
            "print(pcmsim.IoParams(p_in=4).p_in)")
    run = subprocess.run([sys.executable, "-c", code, str(site_dir)], capture_output=True,
                         text=True, cwd=tmp_path, env=clean)
    assert run.returncode == 0, run.stderr
    init_file, module_file, p_in = run.stdout.split()
    assert init_file == str(SOURCE_DIR / "python" / "pcmsim" / "__init__.py")
    assert module_file.startswith(str(BUILD_DIR / "python" / "pcmsim" / "_pcmsim"))
    assert p_in == "4"


def test_unwritable_site_dir_prints_instructions_and_succeeds(tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    env = dict(os.environ, PCMSIM_SITE_DIR=str(blocked / "site"))
    proc = subprocess.run([str(SOURCE_DIR / "scripts" / "install-python.sh"), str(BUILD_DIR),
                           sys.executable], capture_output=True, text=True, env=env)
    assert proc.returncode == 0
    assert "PYTHONPATH" in proc.stdout
