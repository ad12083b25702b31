"""setuptools build of the `pcmsim` Python package (pyproject.toml; docs/python-package.md).

`pip install --no-build-isolation .` builds the compiled module `pcmsim._pcmsim` with CMake
(only the `_pcmsim` target and the libraries it links) and installs it with python/pcmsim/*.py
into the interpreter that runs pip. The version is the CMake project version, read from the
`project(pcmsim VERSION ...)` line of CMakeLists.txt (the module compiles in the same value).

Where CMake builds:
  PCMSIM_BUILD_DIR unset  <source>/build-pip, (re)configured for the interpreter running pip.
                          At the depth of build/, so that with ccache (CCACHE_BASEDIR = the
                          source folder, set here when unset) its objects are cache hits of a
                          `make build`.
  PCMSIM_BUILD_DIR=DIR    that folder (a relative path is taken from the source folder, where
                          pip runs this file); one already configured (e.g. build/ of
                          `make build`) is reused as it is, which takes seconds when it is up to
                          date. It must have been configured for a Python of the same ABI
                          (checked).
CMAKE_BUILD_PARALLEL_LEVEL sets the build jobs (default: all cores); PCMSIM_CMAKE_ARGS adds
configure arguments (split at spaces), e.g. "-DPCMSIM_ARCH=none" for a portable module.
"""
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

SOURCE_DIR = Path(__file__).resolve().parent


def cmake_project_version():
    text = (SOURCE_DIR / "CMakeLists.txt").read_text()
    match = re.search(r"^\s*project\(\s*pcmsim\s+VERSION\s+([0-9]+(?:\.[0-9]+)*)", text,
                      re.MULTILINE | re.IGNORECASE)
    if not match:
        raise RuntimeError("setup.py: CMakeLists.txt has no `project(pcmsim VERSION x.y.z ...)` "
                           "line to take the package version from")
    return match.group(1)


def cmake_build_dir():
    given = os.environ.get("PCMSIM_BUILD_DIR")
    return Path(given).resolve() if given else SOURCE_DIR / "build-pip"


class CMakeBuild(build_ext):
    """Builds each extension (there is one, pcmsim._pcmsim) with the project's CMake build."""

    def build_extension(self, ext):
        if shutil.which("cmake") is None:
            raise RuntimeError("setup.py: cmake not found (apt-get install cmake; the other "
                               "build packages: scripts/install-deps.sh build)")
        build_dir = cmake_build_dir()
        env = dict(os.environ)
        env.setdefault("CCACHE_BASEDIR", str(SOURCE_DIR))
        # Our own folder is (re)configured every time, for the interpreter running pip (an
        # earlier install may have come from another venv); a given, configured one is left as
        # it is.
        if "PCMSIM_BUILD_DIR" not in os.environ or not (build_dir / "CMakeCache.txt").is_file():
            configure = ["cmake", "-S", str(SOURCE_DIR), "-B", str(build_dir),
                         "-DCMAKE_BUILD_TYPE=Release", f"-DPython3_EXECUTABLE={sys.executable}",
                         "-DPCMSIM_BUILD_PYTHON=ON", "-DPCMSIM_BUILD_TESTS=OFF",
                         "-DPCMSIM_BUILD_BENCH=OFF", "-DPCMSIM_BUILD_EXAMPLES=OFF",
                         *shlex.split(env.get("PCMSIM_CMAKE_ARGS", ""))]
            subprocess.run(configure, check=True, env=env)
        jobs = env.get("CMAKE_BUILD_PARALLEL_LEVEL") or str(os.cpu_count() or 1)
        subprocess.run(["cmake", "--build", str(build_dir), "--target", "_pcmsim", "-j", jobs],
                       check=True, env=env)

        # The module's file name carries the ABI of the Python CMake built for; it must be the
        # one of the interpreter installing it.
        suffix = sysconfig.get_config_var("EXT_SUFFIX")
        built = build_dir / "python" / "pcmsim" / f"_pcmsim{suffix}"
        if not built.is_file():
            found = sorted(p.name for p in (build_dir / "python" / "pcmsim").glob("_pcmsim*"))
            raise RuntimeError(
                f"setup.py: {build_dir} built {', '.join(found) or 'no module'}, not "
                f"_pcmsim{suffix} for {sys.executable}: that build folder is configured for "
                f"another Python; unset PCMSIM_BUILD_DIR or point it at a new folder")
        target = Path(self.get_ext_fullpath(ext.name))
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(built, target)


# setuptools' own scratch folders (copies of the .py files, the wheel's contents) go inside the
# CMake build folder, not into build/ where `make build` keeps its CMake tree.
_scratch = cmake_build_dir() / "setuptools"
_scratch.mkdir(parents=True, exist_ok=True)  # egg_info wants its folder to exist
_scratch = str(_scratch)
setup(
    version=cmake_project_version(),
    ext_modules=[Extension("pcmsim._pcmsim", sources=[])],
    cmdclass={"build_ext": CMakeBuild},
    options={"build": {"build_base": _scratch}, "egg_info": {"egg_base": _scratch}},
)
