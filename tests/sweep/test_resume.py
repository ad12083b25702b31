"""A sweep killed with SIGKILL midway and resumed gives the same file as an uninterrupted one:
no finished record lost, none computed twice, the file readable at the moment of the kill."""
import os
import signal
import subprocess
import sys
import time

import h5py

from sweep_common import assert_same_files, model_args, pcmsim, run, tmpdir

exe = pcmsim()
d = tmpdir()
grid = ["--p-in", "4,8", "--gdc", "on,off", "--t-inference", "1,86400", "--seed", "3"]
args = [exe, "sweep"] + model_args(trials=4, limit=100) + grid

full = os.path.join(d, "full.h5")
r = run(args + ["--out", full])
assert r.returncode == 0, r.stderr

killed = os.path.join(d, "killed.h5")
journal = killed + ".journal"
total = 8 * 4


def records_now():
    """Complete record lines only: a kill can cut the last line short, and the resume drops
    such a line (it is recomputed), so counting it would expect one record too many."""
    n = 0
    if os.path.exists(journal):
        with open(journal) as f:
            n += sum(1 for line in f if line.startswith("r ") and line.endswith("\n"))
    return n


# Kill once at least one unit (4 trials x 1 trial... one trial's 8 points) is recorded.
for attempt in range(3):
    for p in (killed, journal):
        if os.path.exists(p):
            os.remove(p)
    proc = subprocess.Popen(args + ["--out", killed], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    while proc.poll() is None and records_now() == 0:
        time.sleep(0.005)
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        break
    print(f"attempt {attempt}: the sweep finished before it could be killed; retrying")
else:
    print("could not kill the sweep midway")
    sys.exit(1)

# The file is complete and readable at the moment of the kill.
with h5py.File(killed, "r") as f:
    assert f.attrs["format"] == b"pcmsim-sweep"  # fixed-length strings: bytes in h5py
done_at_kill = records_now()
with h5py.File(killed, "r") as f:
    if "records" in f:
        done_at_kill = max(done_at_kill, len(f["records/point"]))
assert 0 < done_at_kill < total, done_at_kill

r = run(args + ["--out", killed, "--resume"])
assert r.returncode == 0, r.stderr
# The resumed run computed exactly what was missing.
assert f"{done_at_kill} already done" in r.stderr, r.stderr
assert f"computed {total - done_at_kill} evaluations" in r.stdout, r.stdout
content = assert_same_files(full, killed)
assert len(content["points/index"]) == 8 and len(content["records/point"]) == total
assert not os.path.exists(journal)
with open(os.path.splitext(full)[0] + ".csv") as a, open(os.path.splitext(killed)[0] + ".csv") as b:
    assert a.read() == b.read()

# Resuming a finished sweep computes nothing and changes nothing.
r = run(args + ["--out", killed, "--resume"])
assert r.returncode == 0 and "computed 0 evaluations" in r.stdout, r.stdout
assert_same_files(full, killed)
print(f"OK: killed after {done_at_kill}/{total} records; resumed file identical")
