#!/usr/bin/env python3
"""Sweep throughput: points per minute with and without work reuse, and the MPI speed-up of
2 ranks over 1, each measured against its baseline in the same run.

    python3 bench/bench_sweep.py BUILD/bin/pcmsim [--limit 200] [--trials 2] [--skip-mpi]

Reported per configuration: wall time, evaluations (point x trial) per minute of wall time and
per minute of CPU time (user + system of the child processes). On a shared machine the CPU-time
figure is the robust one for the reuse ratio; the MPI speed-up is a wall-time ratio and needs a
quiet machine (the load average is printed beside it).
"""
import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_sweep(cmd, out):
    for p in (out, out + ".journal"):
        if os.path.exists(p):
            os.remove(p)
    cpu0, t0 = children_cpu(), time.perf_counter()
    r = subprocess.run(cmd + ["--out", out], capture_output=True, text=True)
    wall, cpu = time.perf_counter() - t0, children_cpu() - cpu0
    if r.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{r.stderr}")
    m = re.search(r"computed (\d+) evaluations", r.stdout)
    n = int(m.group(1)) if m else 0
    return n, wall, cpu, r.stdout


def report(name, n, wall, cpu):
    print(f"  {name:<34} {n:4d} evals  wall {wall:7.2f} s  {60 * n / wall:8.1f} /min wall  "
          f"cpu {cpu:7.2f} s  {60 * n / cpu:8.1f} /min cpu", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pcmsim")
    ap.add_argument("--model", default=os.path.join(SRC, "zoo", "mlp.h5"))
    ap.add_argument("--limit", type=int, default=200)
    ap.add_argument("--trials", type=int, default=2)
    ap.add_argument("--skip-mpi", action="store_true")
    a = ap.parse_args()
    d = tempfile.mkdtemp(prefix="pcmsim_bench_sweep_")
    base = [a.pcmsim, "sweep", "--model", a.model, "--limit", str(a.limit), "--trials",
            str(a.trials)]
    # A precision x drift sweep: 3 x 3 converter settings x 4 times = 36 points.
    grid = ["--p-in", "4,6,8", "--p-out", "4,6,8", "--t-inference", "1,3600,86400,31536000"]
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; model {a.model}, "
          f"{a.limit} images, {a.trials} trials, 36 points", flush=True)

    print("work reuse (1 process, all cores):")
    n1, w1, c1, _ = run_sweep(base + grid + ["--reuse", "on"], os.path.join(d, "reuse.h5"))
    report("reuse on (program once per trial)", n1, w1, c1)
    n0, w0, c0, _ = run_sweep(base + grid + ["--reuse", "off"], os.path.join(d, "fresh.h5"))
    report("reuse off (fresh chip per point)", n0, w0, c0)
    print(f"  reuse speed-up: {w0 / w1:.2f}x wall, {c0 / c1:.2f}x cpu")

    mpirun = shutil.which("mpirun")
    if a.skip_mpi or not mpirun:
        print("MPI: skipped" + ("" if mpirun else " (mpirun not found)"))
        return
    launcher = [mpirun, "--oversubscribe", "--bind-to", "none"]
    if os.geteuid() == 0:
        launcher.insert(1, "--allow-run-as-root")
    print("MPI (reuse on; OpenMP threads per rank = cores / ranks unless OMP_NUM_THREADS):")
    walls, busiest = {}, {}
    for ranks, env_threads in ((1, "1"), (1, None), (2, None)):
        env = dict(os.environ)
        label = f"-np {ranks}"
        if env_threads:
            env["OMP_NUM_THREADS"] = env_threads
            label += f", {env_threads} thread"
        else:
            env.pop("OMP_NUM_THREADS", None)
            label += f", {max(1, (os.cpu_count() or 1) // ranks)} thread(s)/rank"
        cmd = launcher + ["-np", str(ranks)] + base + grid
        for p in ("mpi.h5", "mpi.h5.journal"):
            if os.path.exists(os.path.join(d, p)):
                os.remove(os.path.join(d, p))
        cpu0, t0 = children_cpu(), time.perf_counter()
        r = subprocess.run(cmd + ["--out", os.path.join(d, "mpi.h5")], capture_output=True,
                           text=True, env=env)
        wall, cpu = time.perf_counter() - t0, children_cpu() - cpu0
        if r.returncode != 0:
            sys.exit(r.stderr)
        n = int(re.search(r"computed (\d+) evaluations", r.stdout).group(1))
        report(label, n, wall, cpu)
        ranks_cpu = [float(x) for x in
                     re.search(r"cpu seconds per rank:([ 0-9.e+-]+)", r.stdout).group(1).split()]
        print(f"    cpu seconds per rank: {' '.join(f'{c:.2f}' for c in ranks_cpu)}")
        walls[label] = wall
        busiest[label] = max(ranks_cpu)
    keys = list(walls)
    print(f"  speed-up of 2 ranks over 1 rank x 1 thread:  {walls[keys[0]] / walls[keys[2]]:.2f}x")
    print(f"  speed-up of 2 ranks over 1 rank x all cores: {walls[keys[1]] / walls[keys[2]]:.2f}x")
    print(f"  (load average now {os.getloadavg()[0]:.2f})")
    # On a busy machine the wall time measures the scheduler's share, not the code. The busiest
    # rank's CPU time is what the wall time would be on idle cores (each rank on its own core).
    print(f"  idle-core estimate (1-thread rank CPU / busiest of 2 ranks' CPU): "
          f"{busiest[keys[0]] / busiest[keys[2]]:.2f}x")


if __name__ == "__main__":
    main()
