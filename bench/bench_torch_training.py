#!/usr/bin/env python3
"""Training throughput of pcmsim.torch against plain PyTorch FP32 training of the same model,
measured in the same run (issue 12): steps per second and the ratio of the time per step.

    /usr/bin/python3 bench/bench_torch_training.py [--models mlp,lenet5] [--steps 20]
        [--batch 128] [--bits 4] [--threads 1]

Each model (zoo/models.py) is trained for --steps SGD steps on random Fashion-MNIST-shaped
batches, once in FP32 and once converted with pcmsim.torch (PCM devices, --bits DAC/ADC,
calibrated ranges, GDC, drift time log-uniform over 1 h .. 1 year), alternating FP32 and analog
blocks of steps so that a change of machine load hits both. Times are CPU seconds of this
process (user + system, all threads: robust on a shared machine) and wall seconds. Also printed:
the share of the analog step spent in the C++ forward and backward.
"""
import argparse
import os
import sys
import time

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "zoo"))
import models  # noqa: E402

import pcmsim  # noqa: E402
import pcmsim.torch as pt  # noqa: E402


def cpu():
    t = os.times()
    return t.user + t.system


def steps(model, opt, batches):
    c0, w0 = cpu(), time.perf_counter()
    model.train()
    for x, y in batches:
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return cpu() - c0, time.perf_counter() - w0


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="mlp,lenet5")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--bits", type=int, default=4)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--gdc", choices=["on", "off"], default="on",
                   help="global drift compensation in the training forward (its probe reads "
                        "dominate the cost of Linear layers at small batches)")
    p.add_argument("--rounds", type=int, default=2, help="alternating blocks of steps per kind")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    pcmsim.keep_freed_memory()  # as docs/training.md advises (about 15 % of an analog step)
    print(f"torch {torch.__version__}, {args.threads} thread(s), OMP_NUM_THREADS="
          f"{os.environ.get('OMP_NUM_THREADS', '(unset)')}, load average "
          f"{os.getloadavg()[0]:.1f}, batch {args.batch}, GDC {args.gdc}, {args.steps} steps x {args.rounds} "
          f"rounds per kind")
    g = torch.Generator().manual_seed(0)
    batches = [(torch.randn(args.batch, 1, 28, 28, generator=g),
                torch.randint(0, 10, (args.batch,), generator=g)) for _ in range(args.steps)]

    native = pcmsim.analog_train_forward, pcmsim.analog_train_backward
    spent = {"forward": 0.0, "backward": 0.0}

    def timed(name, fn):
        def wrapper(*a, **k):
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                spent[name] += time.perf_counter() - t0
        return wrapper

    for name in args.models.split(","):
        torch.manual_seed(1)
        fp32 = models.build(name)
        torch.manual_seed(1)
        analog = models.build(name)
        config = pcmsim.SimulationConfig(io=pcmsim.IoParams(p_in=args.bits, p_out=args.bits),
                                         calibrate=True, gdc=args.gdc == "on")
        pt.convert(analog, config, pcmsim.TrainingParams(), seed=1)
        opt_f = torch.optim.SGD(fp32.parameters(), lr=0.01, momentum=0.9)
        opt_a = torch.optim.SGD(analog.parameters(), lr=0.01, momentum=0.9)
        steps(fp32, opt_f, batches[:2])    # warm-up (allocations, first-call costs)
        steps(analog, opt_a, batches[:2])
        tf = [0.0, 0.0]
        ta = [0.0, 0.0]
        spent.update(forward=0.0, backward=0.0)
        pt._pcmsim.analog_train_forward = timed("forward", native[0])
        pt._pcmsim.analog_train_backward = timed("backward", native[1])
        try:
            for _ in range(args.rounds):
                c, w = steps(fp32, opt_f, batches)
                tf[0] += c
                tf[1] += w
                c, w = steps(analog, opt_a, batches)
                ta[0] += c
                ta[1] += w
        finally:
            pt._pcmsim.analog_train_forward, pt._pcmsim.analog_train_backward = native
        n = args.steps * args.rounds
        print(f"{name:7s} FP32 {1e3 * tf[0] / n:7.1f} ms CPU/step ({1e3 * tf[1] / n:7.1f} ms wall)"
              f" | pcmsim.torch {args.bits}-bit {1e3 * ta[0] / n:7.1f} ms CPU/step "
              f"({1e3 * ta[1] / n:7.1f} ms wall) | ratio {ta[0] / tf[0]:.2f} x CPU, "
              f"{ta[1] / tf[1]:.2f} x wall | C++ forward {100 * spent['forward'] / ta[1]:.0f} %, "
              f"backward {100 * spent['backward'] / ta[1]:.0f} % of the analog wall time")


if __name__ == "__main__":
    main()
