#!/usr/bin/python3
"""Trains one zoo model on Fashion-MNIST and exports it to the pcmsim HDF5 model format.

  /usr/bin/python3 zoo/train.py --model resnet --epochs 12 --seed 1 --out zoo/resnet.h5
  /usr/bin/python3 zoo/train.py --model resnet --hw-aware --init CKPT_OF_STANDARD \
      --epochs 6 --seed 1 --out zoo/resnet_hwa.h5
  /usr/bin/python3 zoo/train.py --model lenet5 --pcmsim --p-in 4 --p-out 4 --calibrate \
      --init zoo/lenet5.h5 --epochs 3 --seed 1 --out zoo/lenet5_hwa_p4.h5

Hardware-aware training comes in two kinds: --hw-aware is the plain weight-noise injection
baseline (eta * max|W|, Joshi et al. 2020); --pcmsim trains through pcmsim.torch, i.e. every
training forward of every Conv2d/Linear runs pcmsim's own simulated forward (programming noise,
drift to a time drawn per step, read/output noise, DAC/ADC, tile split, calibrated ranges, GDC:
the settings below, those of `pcmsim run`), with a straight-through backward in C++.

The checkpoint (PyTorch state dict + metadata) goes to --ckpt (default: --out with .pt), the model
file to --out (via export.py, which also records PyTorch's predictions on the whole test set).
Deterministic: fixed seeds, a seeded shuffle, deterministic algorithms; the same command on the
same thread count gives the same file.
"""
import argparse
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402
import models  # noqa: E402

DEFAULT_LR = {"mlp": 0.05, "lenet5": 0.05, "resnet": 0.1, "vit": 0.05}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, choices=["mlp", "lenet5", "resnet", "vit"])
    p.add_argument("--hw-aware", action="store_true",
                   help="weight-noise injection (Joshi et al. 2020) + weight clipping")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", required=True, help="output model file (.h5)")
    p.add_argument("--ckpt", default=None, help="checkpoint path (default: --out with .pt)")
    p.add_argument("--init", default=None,
                   help="checkpoint (.pt) or zoo model file (.h5) to start from (hardware-aware "
                        "models fine-tune the standard one)")
    p.add_argument("--pcmsim", action="store_true",
                   help="hardware-aware training through pcmsim.torch (the simulator's forward)")
    p.add_argument("--p-in", type=int, default=8, help="--pcmsim: DAC bits (as pcmsim run)")
    p.add_argument("--p-out", type=int, default=8, help="--pcmsim: ADC bits (as pcmsim run)")
    p.add_argument("--calibrate", action="store_true",
                   help="--pcmsim: converter ranges calibrated on each step's batch (as pcmsim "
                        "run --calibrate on)")
    p.add_argument("--calibration-percentile", type=float, default=0.0,
                   help="--pcmsim: calibrate with the percentile statistic at this percentile "
                        "(as pcmsim run --calibration-statistic percentile "
                        "--calibration-percentile P; 0 = the max, pcmsim's default)")
    p.add_argument("--learn-input-ranges", action="store_true",
                   help="--pcmsim: learn each layer's DAC input range (LSQ; static_range noise "
                        "management, as pcmsim run --noise-management static_range); the ranges "
                        "are stored in the model file")
    p.add_argument("--t-train-min", type=float, default=3600.0,
                   help="--pcmsim: shortest drift time of a step, s (log-uniform; default 1 h)")
    p.add_argument("--t-train-max", type=float, default=31536000.0,
                   help="--pcmsim: longest drift time of a step, s (default 1 year)")
    p.add_argument("--sim-seed", type=int, default=0, help="--pcmsim: seed of the simulator's draws")
    p.add_argument("--digital-layers", default="",
                   help="--pcmsim: layers kept digital in training, as pcmsim run --digital-layers "
                        "(names, first, last; comma-separated)")
    p.add_argument("--eta", type=float, default=0.04,
                   help="hardware-aware weight noise: sigma = eta * max|W| per layer (default 0.04)")
    p.add_argument("--layer-eta", action="append", default=[], metavar="NAME=ETA",
                   help="hardware-aware noise of one layer (PyTorch module name, e.g. stem=0.16), "
                        "overriding --eta; repeatable")
    p.add_argument("--clip-sigma", type=float, default=2.5,
                   help="hardware-aware weight clipping at +-clip_sigma * std(W) (0: off; default 2.5)")
    p.add_argument("--lr", type=float, default=None,
                   help="peak learning rate (default: 0.05 MLP/LeNet-5, 0.1 ResNet; a tenth of it "
                        "when fine-tuning from --init)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--augment", choices=["flip", "none"], default="flip",
                   help="training augmentation: random horizontal flip (default) or none")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--data-dir", default=data.DEFAULT_DIR)
    p.add_argument("--no-export", action="store_true", help="only write the checkpoint")
    return p.parse_args(argv)


@torch.no_grad()
def evaluate(model, x, y, batch=1000):
    model.eval()
    pred = torch.cat([model(x[i:i + batch]).argmax(1) for i in range(0, x.shape[0], batch)])
    return pred, float((pred == y).double().mean())


def load_init(model, path):
    """The weights of a checkpoint (.pt) or of a zoo model file (.h5, layers named after the
    modules); returns the checkpoint's meta (a dict with test_accuracy)."""
    if path.endswith(".h5"):
        import h5py
        state = model.state_dict()
        with h5py.File(path, "r") as f:
            meta = {"model": None, "test_accuracy": float(f.attrs.get("fp32_test_accuracy", float("nan")))}
            for key, group in f["layers"].items():
                name = key.split("_", 1)[1]
                for ds in group:
                    k = f"{name}.{ds}"
                    if k not in state:
                        raise SystemExit(f"--init {path}: layer '{name}' has '{ds}', the model has no '{k}'")
                    state[k] = torch.from_numpy(group[ds][()]).reshape(state[k].shape)
        model.load_state_dict(state)
        return meta
    ck = torch.load(path, map_location="cpu")
    model.load_state_dict(ck["state_dict"])
    return ck["meta"]


def pcmsim_convert(model, args):
    """--pcmsim: the model's analog layers run pcmsim's forward in training (pcmsim.torch)."""
    import pcmsim
    import pcmsim.torch as pt
    pcmsim.keep_freed_memory()  # each step's large buffers reused, not faulted in afresh
    config = pcmsim.SimulationConfig(io=pcmsim.IoParams(p_in=args.p_in, p_out=args.p_out),
                                     calibrate=args.calibrate, seed=args.sim_seed)
    if args.digital_layers:
        config.mapper.digital_layers = [n for n in args.digital_layers.split(",") if n]
    if args.calibration_percentile > 0:
        config.calibration.statistic = "percentile"
        config.calibration.percentile = args.calibration_percentile
    params = pcmsim.TrainingParams(t_train_min=args.t_train_min, t_train_max=args.t_train_max,
                                   learn_input_ranges=args.learn_input_ranges)
    if args.learn_input_ranges:
        config.io.noise_management = "static_range"
    return pt.convert(model, config, params, seed=args.sim_seed)


def main(argv=None):
    args = parse_args(argv)
    if args.epochs < 1:
        raise SystemExit("--epochs must be >= 1")
    if args.eta < 0 or args.clip_sigma < 0:
        raise SystemExit("--eta and --clip-sigma must be >= 0")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    torch.use_deterministic_algorithms(True)
    ckpt_path = args.ckpt or os.path.splitext(args.out)[0] + ".pt"

    train_img, train_lbl = data.load_split("train", args.data_dir)
    test_img, test_lbl = data.load_split("test", args.data_dir)
    mean, std = data.normalisation(train_img)
    xtr = torch.from_numpy(data.to_float(train_img, mean, std))
    ytr = torch.from_numpy(train_lbl)
    xte = torch.from_numpy(data.to_float(test_img, mean, std))
    yte = torch.from_numpy(test_lbl)

    model = models.build(args.model)
    init_meta = None
    if args.hw_aware and args.pcmsim:
        raise SystemExit("--hw-aware (weight noise) and --pcmsim are two kinds of hardware-aware "
                         "training: choose one")
    if args.init:
        init_meta = load_init(model, args.init)
        if init_meta["model"] not in (None, args.model):
            raise SystemExit(f"--init {args.init} holds a {init_meta['model']}, not a {args.model}")
        _, acc0 = evaluate(model, xte, yte)
        print(f"init from {args.init}: test acc {acc0:.4f}", flush=True)

    eta = args.eta if args.hw_aware else 0.0
    clip = args.clip_sigma if args.hw_aware else 0.0
    models.set_weight_noise(model, eta)
    layer_eta = {}
    for item in args.layer_eta:
        name, _, value = item.partition("=")
        mods = dict(model.named_modules())
        if name not in mods or not isinstance(mods[name], (models.AConv2d, models.ALinear)):
            raise SystemExit(f"--layer-eta {item}: no analog layer '{name}'")
        if float(value) < 0:
            raise SystemExit(f"--layer-eta {item}: eta must be >= 0")
        layer_eta[name] = float(value) if args.hw_aware else 0.0
        mods[name].eta = layer_eta[name]
    if args.pcmsim:
        clip = args.clip_sigma
        pcmsim_convert(model, args)
    models.clip_weights(model, clip)

    lr = args.lr if args.lr is not None else DEFAULT_LR[args.model] * (0.1 if args.init else 1.0)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True,
                          weight_decay=args.weight_decay)
    n = xtr.shape[0]
    steps_per_epoch = math.ceil(n / args.batch_size)
    total = steps_per_epoch * args.epochs
    warm = 0 if args.init else steps_per_epoch // 2
    # Linear warm-up (from scratch only) then cosine decay to zero, per step.
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm else
        0.5 * (1 + math.cos(math.pi * (s - warm) / max(1, total - warm))))
    shuffle = np.random.RandomState(args.seed)
    t_start = time.time()
    for epoch in range(args.epochs):
        model.train()
        perm = torch.from_numpy(shuffle.permutation(n))
        loss_sum, correct = 0.0, 0
        t0 = time.time()
        for i in range(0, n, args.batch_size):
            idx = perm[i:i + args.batch_size]
            xb, yb = xtr[idx], ytr[idx]
            if args.augment == "flip":
                flip = torch.from_numpy(shuffle.rand(xb.shape[0]) < 0.5)
                xb = torch.where(flip[:, None, None, None], xb.flip(3), xb)
            out = model(xb)
            loss = F.cross_entropy(out, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            models.clip_weights(model, clip)
            loss_sum += float(loss) * xb.shape[0]
            correct += int((out.argmax(1) == yb).sum())
        _, acc = evaluate(model, xte, yte)
        print(f"epoch {epoch + 1}/{args.epochs} loss {loss_sum / n:.4f} train_acc {correct / n:.4f} "
              f"test_acc {acc:.4f} ({time.time() - t0:.0f} s)", flush=True)

    models.set_weight_noise(model, 0.0)
    _, acc = evaluate(model, xte, yte)
    meta = {
        "model": args.model, "hw_aware": bool(args.hw_aware or args.pcmsim),
        "hw_aware_kind": "pcmsim" if args.pcmsim else ("weight_noise" if args.hw_aware else ""),
        "pcmsim_p_in": args.p_in if args.pcmsim else 0, "pcmsim_p_out": args.p_out if args.pcmsim else 0,
        "pcmsim_calibrate": bool(args.calibrate and args.pcmsim),
        "pcmsim_calibration_percentile": args.calibration_percentile if args.pcmsim else 0.0,
        "pcmsim_digital_layers": args.digital_layers if args.pcmsim else "",
        "pcmsim_learn_input_ranges": bool(args.pcmsim and args.learn_input_ranges),
        "pcmsim_t_train": [args.t_train_min, args.t_train_max] if args.pcmsim else [], "eta": eta, "layer_eta": layer_eta, "clip_sigma": clip,
        "epochs": args.epochs, "seed": args.seed, "lr": lr, "batch_size": args.batch_size,
        "weight_decay": args.weight_decay, "augment": args.augment,
        "init": os.path.basename(args.init) if args.init else "",
        "init_test_accuracy": init_meta["test_accuracy"] if init_meta else float("nan"),
        "mean": mean, "std": std, "test_accuracy": acc,
        "command": " ".join(["zoo/train.py"] + (sys.argv[1:] if argv is None else list(argv))),
        "torch_version": torch.__version__, "train_seconds": time.time() - t_start,
    }
    os.makedirs(os.path.dirname(os.path.abspath(ckpt_path)), exist_ok=True)
    torch.save({"state_dict": model.state_dict(), "meta": meta}, ckpt_path)
    suffix = f"_hwa_p{args.p_out}" if args.pcmsim else ("_hwa" if args.hw_aware else "")
    print(f"FP32 test accuracy {args.model}{suffix}: {acc:.4f} "
          f"({time.time() - t_start:.0f} s); checkpoint {ckpt_path}", flush=True)
    if not args.no_export:
        import export
        export.export_checkpoint(ckpt_path, args.out, data_dir=args.data_dir)
        print(f"wrote {args.out}", flush=True)


if __name__ == "__main__":
    main()
