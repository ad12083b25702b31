"""Plots the IR-drop study (run.sh): accuracy vs wire resistance per tile size, GDC on/off.

    /usr/bin/python3 scripts/study/ir_drop/plot.py scripts/study/ir_drop/results.txt docs/img/ir_drop_resnet.png
"""
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

N_IMAGES = 500


def main(results, out):
    rows = [line.split() for line in open(results) if line.strip()]
    fig, ax = plt.subplots(figsize=(6, 4))
    for tile in ("256x256", "512x512"):
        for gdc, style in (("true", "-o"), ("false", "--s")):
            pts = sorted((float(r[2]), float(r[3])) for r in rows if r[0] == tile and r[1] == gdc)
            r, acc = np.array(pts).T
            # Binomial standard error of an accuracy on N_IMAGES images.
            se = 100 * np.sqrt(acc / 100 * (1 - acc / 100) / N_IMAGES)
            ax.errorbar(r, acc, yerr=se, fmt=style, capsize=3,
                        label=f"{tile.replace('x', ' x ')} tiles, GDC {'on' if gdc == 'true' else 'off'}")
    ax.set_xlabel("wire resistance per segment, rows and columns (Ω)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("resnet_hwa, t = 1 h, 500 images, 1 trial\n(error bars: binomial standard error)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=120)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
