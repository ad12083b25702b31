"""Bad input is rejected with a clear message before any work starts (no results file)."""
import os

from sweep_common import model_args, pcmsim, run, tmpdir

exe = pcmsim()
d = tmpdir()
base = [exe, "sweep"] + model_args(trials=1, limit=20)


def expect_error(extra, words, out=None):
    out = out or os.path.join(d, "r.h5")
    r = run(base + extra + ["--out", out], timeout=60)
    assert r.returncode == 2, (extra, r.returncode, r.stderr)
    for w in words:
        assert w in r.stderr, (extra, w, r.stderr)
    assert "work units over" not in r.stderr, "work started: " + r.stderr
    assert not os.path.exists(out), out
    print("ok:", " ".join(extra), "->", r.stderr.strip().splitlines()[-1])


bad = os.path.join(d, "bad.ini")
with open(bad, "w") as f:
    f.write("p-in = 4,6\nthis line is not an option\n")
expect_error(["--config", bad], ["config file", "invalid line"])
unknown = os.path.join(d, "unknown.ini")
with open(unknown, "w") as f:
    f.write("p-in = 4,6\nbits-of-magic = 1,2\n")
expect_error(["--config", unknown], ["unrecognised option 'bits-of-magic'"])
expect_error(["--config", os.path.join(d, "missing.ini")], ["cannot open"])
expect_error(["--bits-of-magic", "1,2"], ["bits-of-magic", "not an option or axis"])
expect_error(["--p-in", ""], ["empty grid"])
expect_error(["--p-in", "4,,6"], ["empty value"])
expect_error(["--p-in", "4,4"], ["'4' twice"])
expect_error(["--p-in", "4,1"], ["p_in=1", "p_in = 1"])
expect_error(["--tile", "256x256,abc"], ["tile"])
expect_error(["--layer-precision", "fc1:4:4,nolayer:4:4"], ["layer 'nolayer'"])
expect_error(["--digital-layers", "none,nolayer"], ["digital layer 'nolayer'"])
expect_error(["--tiles", "1,100"], ["num_tiles=1", "tiles short"])
expect_error(["--p-in", "4,8"], ["does not exist"], out=os.path.join(d, "no", "such", "r.h5"))
expect_error(["--p-in", "4,8"], ["not writable"], out="/proc/pcmsim_sweep_test.h5")
# An existing file is never overwritten without --resume, and --resume checks it is this sweep.
good = os.path.join(d, "good.h5")
r = run(base + ["--p-in", "4,8", "--t-inference", "1", "--out", good])
assert r.returncode == 0, r.stderr
r = run(base + ["--p-in", "4,8", "--t-inference", "1", "--out", good])
assert r.returncode == 2 and "already exists" in r.stderr, r.stderr
r = run(base + ["--p-in", "4,6", "--t-inference", "1", "--out", good, "--resume"])
assert r.returncode == 2 and "another sweep" in r.stderr, r.stderr
print("OK")
