"""Plots the ADC-error study (run.sh) and the lenet5_hwa IR-drop study (../ir_drop/run_lenet5.sh)
from the sweeps' CSV views, and prints their tables as Markdown.

    /usr/bin/python3 scripts/study/adc_errors/plot.py adc OUT_DIR docs/img/adc_errors.png
    /usr/bin/python3 scripts/study/adc_errors/plot.py ir OUT_DIR docs/img/ir_drop_lenet5.png

Points: the mean accuracy over the Monte Carlo trials; error bars: +- one standard deviation of
the accuracy over those trials (2 here), as the sweep's CSV gives them (acc_mean, acc_std).
"""
import csv
import glob
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

LSB = 10.0 / 127  # 1 LSB of the default 8-bit ADC over out_bound = 10 (normalised units)
MODELS = (("resnet_hwa", 500), ("lenet5_hwa", 1000))
SETTINGS = (("adc-offset-std", "adc_offset_std", "ADC offset std"),
            ("adc-inl", "adc_inl", "ADC INL bow (mid-scale)"))
STYLES = {("on", "off"): "-o", ("on", "on"): "-s", ("off", "off"): "--o", ("off", "on"): "--s"}


def read(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def adc(out_dir, png):
    fig, axes = plt.subplots(2, 2, figsize=(10, 7.5))
    for row, (model, n) in enumerate(MODELS):
        for col, (opt, field, label) in enumerate(SETTINGS):
            ax = axes[row][col]
            rows = read(os.path.join(out_dir, f"{model}_{opt}.csv"))
            print(f"\n{model}, {label} (LSB) -> accuracy % (mean ± std over trials)\n")
            print("| GDC | calibration | " + " | ".join(
                f"{float(v) / LSB:g} LSB" for v in sorted({r[field] for r in rows}, key=float)) + " |")
            print("|---|---|" + "---|" * len({r[field] for r in rows}))
            for (gdc, cal), style in STYLES.items():
                pts = sorted((float(r[field]) / LSB, 100 * float(r["acc_mean"]), 100 * float(r["acc_std"]))
                             for r in rows if r["gdc"] == gdc and r["calibrate"] == cal)
                x, y, e = zip(*pts)
                ax.errorbar(x, y, yerr=e, fmt=style, capsize=3, label=f"GDC {gdc}, calibration {cal}")
                print(f"| {gdc} | {cal} | " + " | ".join(f"{a:.1f} ± {s:.1f}" for _, a, s in pts) + " |")
            ax.set_xlabel(f"{label} (LSB of the 8-bit ADC, full scale 10)")
            ax.set_ylabel("test accuracy (%)")
            ax.set_title(f"{model}, t = 1 h, {n} images, 2 trials", fontsize=10)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
    fig.suptitle("Accuracy vs ADC errors, 256 x 256 tiles (error bars: ± 1 std over 2 trials)")
    fig.tight_layout()
    fig.savefig(png, dpi=110)


def ir(out_dir, png):
    rows = []
    for path in glob.glob(os.path.join(out_dir, "lenet5_r_*.csv")):
        r_ohm = os.path.basename(path)[len("lenet5_r_"):-len(".csv")]  # r_row = r_col
        rows += [dict(row, r_row=r_ohm) for row in read(path)]
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    print("\nlenet5_hwa, wire resistance (Ω) -> accuracy % (mean ± std over trials)\n")
    rs = sorted({float(r["r_row"]) for r in rows})
    print("| tiles | GDC | " + " | ".join(f"{r:g} Ω" for r in rs) + " |")
    print("|---|---|" + "---|" * len(rs))
    for tile in ("256", "512"):
        for gdc, style in (("on", "-o"), ("off", "--s")):
            pts = sorted((float(r["r_row"]), 100 * float(r["acc_mean"]), 100 * float(r["acc_std"]))
                         for r in rows if r["tile"] == f"{tile}x{tile}" and r["gdc"] == gdc)
            x, y, e = zip(*pts)
            ax.errorbar(x, y, yerr=e, fmt=style, capsize=3, label=f"{tile} x {tile} tiles, GDC {gdc}")
            print(f"| {tile} × {tile} | {gdc} | " + " | ".join(f"{a:.1f} ± {s:.1f}" for _, a, s in pts) + " |")
    ax.set_xlabel("wire resistance per segment, rows and columns (Ω)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("lenet5_hwa, t = 1 h, 1000 images, 2 trials\n(error bars: ± 1 std over trials)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png, dpi=120)


if __name__ == "__main__":
    {"adc": adc, "ir": ir}[sys.argv[1]](sys.argv[2], sys.argv[3])
