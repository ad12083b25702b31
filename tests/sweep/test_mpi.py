"""mpirun -np 2 gives the same results file as -np 1 and as a plain single-process run."""
import os

from sweep_common import assert_same_files, model_args, mpi_launcher, pcmsim, run, run_mpi, tmpdir

exe = pcmsim()
launcher = mpi_launcher()
d = tmpdir()
grid = ["--p-in", "4,8", "--p-out", "6,8", "--t-inference", "1,86400", "--cell", "pair,multi_pair"]
args = ["sweep"] + model_args(trials=2, limit=100) + grid

plain = os.path.join(d, "plain.h5")
r = run([exe] + args + ["--out", plain])
assert r.returncode == 0, r.stderr
files = {}
for n in (1, 2):
    files[n] = os.path.join(d, f"np{n}.h5")
    run_mpi(launcher, n, [exe] + args + ["--out", files[n]])
assert_same_files(files[1], files[2])
content = assert_same_files(plain, files[2])
assert len(content["points/index"]) == 16
print("OK: -np 2 == -np 1 == single process, 16 points x 2 trials")
