"""`pcmsim tune` shared over MPI: -np 2 (and -np 3, more ranks than a round's jobs) gives the
same results file as a plain single-process run, and every rank took the same search path."""
import os

from sweep_common import assert_same_files, model_args, mpi_launcher, pcmsim, run, run_mpi, tmpdir

exe = pcmsim()
launcher = mpi_launcher()
d = tmpdir()
args = (["tune"] + model_args(trials=2, limit=100) +
        ["--validation-images", "150", "--candidate-bits", "8,5,4", "--uniform-bits", "8,4",
         "--budget", "1"])  # the 8-bit baseline misses it: a layer is kept digital

plain = os.path.join(d, "plain.h5")
r = run([exe] + args + ["--out", plain])
assert r.returncode == 0, r.stdout + r.stderr
files = {}
for n in (2, 3):
    files[n] = os.path.join(d, f"np{n}.h5")
    out = run_mpi(launcher, n, [exe] + args + ["--out", files[n]])
    # Only rank 0 reports: one summary.
    assert out.stdout.count("\nchosen assignment (") == 1, out.stdout
content = assert_same_files(plain, files[2])
assert_same_files(plain, files[3])
n_candidates = len(content["candidates/energy_per_inference_J"])
# baseline + 2 layers x 2 converters x 2 lower bits of sensitivity + uniform 4 at least
assert n_candidates >= 10, n_candidates
assert b"digital" in content["candidates/phase"], content["candidates/phase"]
print(f"OK: tune -np 2 == -np 3 == single process ({n_candidates} candidates)")
