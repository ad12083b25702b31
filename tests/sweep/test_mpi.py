"""mpirun -np 2 gives the same results file as -np 1 and as a plain single-process run."""
import os
import shutil
import sys

from sweep_common import SKIP, assert_same_files, model_args, pcmsim, run, tmpdir

exe = pcmsim()
mpirun = shutil.which("mpirun")
if not mpirun:
    print("SKIP: mpirun not found (install openmpi-bin); the sweep runs single-process without it")
    sys.exit(SKIP)
d = tmpdir()
grid = ["--p-in", "4,8", "--p-out", "6,8", "--t-inference", "1,86400", "--cell", "pair,multi_pair"]
args = ["sweep"] + model_args(trials=2, limit=100) + grid
# Loopback only: shared memory between the ranks, TCP (if used at all) on lo.
launcher = [mpirun, "--oversubscribe", "--mca", "btl_tcp_if_include", "lo"]
if os.geteuid() == 0:
    launcher.insert(1, "--allow-run-as-root")

plain = os.path.join(d, "plain.h5")
r = run([exe] + args + ["--out", plain])
assert r.returncode == 0, r.stderr
files = {}
for n in (1, 2):
    out = os.path.join(d, f"np{n}.h5")
    r = run(launcher + ["-np", str(n), exe] + args + ["--out", out])
    if r.returncode != 0 and n == 1 and ("not enough slots" in r.stderr or "PMIx" in r.stderr):
        print("SKIP: mpirun cannot start processes here:\n" + r.stderr)
        sys.exit(SKIP)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"over {n} process(es)" in r.stderr, r.stderr
    files[n] = out
assert_same_files(files[1], files[2])
content = assert_same_files(plain, files[2])
assert len(content["points/index"]) == 16
print("OK: -np 2 == -np 1 == single process, 16 points x 2 trials")
