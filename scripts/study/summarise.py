#!/usr/bin/env python3
"""Tables for docs/accuracy.md from the CSV files of scripts/study/run_study.sh.

usage: python3 scripts/study/summarise.py RESULTS_DIR > tables.md

Each <model>__<tag>.csv holds the columns of `pcmsim run --format csv`
(model, the settings, t_inference, trials, acc_mean, acc_std, ...; files written before
the settings were unified name the time t_inference_s). Accuracies are printed in
percent as mean ± std over the Monte Carlo trials, and the drop from FP32 in points.
"""
import csv
import glob
import os
import sys

TIME_NAMES = {1.0: "1 s", 3600.0: "1 h", 86400.0: "1 d", 31536000.0: "1 y"}
MODEL_ORDER = ["mlp", "mlp_hwa", "lenet5", "lenet5_hwa", "resnet", "resnet_hwa_eta0.04", "resnet_hwa"]
TAG_TEXT = {
    "p8_gdc_on": "p = 8, GDC on",
    "p8_gdc_off": "p = 8, GDC off",
    "p6_gdc_on": "p = 6, GDC on",
    "p4_gdc_on": "p = 4, GDC on (abs-max input, ADC ±10)",
    "p4_cal_max": "p = 4, calibrated static input range + ADC per column (max)",
    "p4_cal_pct": "p = 4, calibrated static input range + ADC per column (99.9th pct)",
    "p4_absmax_cal": "p = 4, abs-max input + calibrated ADC per column (99.9th pct)",
    "p4_cal_pct_dig": "p = 4, calibrated (99.9th pct), first and last layer digital",
}
ABLATION_TEXT = {
    "abl_baseline": "defaults (PCM, p = 8, GDC per tile)",
    "abl_digital_first_last": "first and last layer digital",
    "abl_no_read_noise": "no 1/f read noise",
    "abl_no_drift": "no drift (nu = 0)",
    "abl_no_prog_noise": "no programming noise",
    "abl_gdc_per_column": "GDC per column",
    "abl_no_out_noise": "no output noise",
    "abl_no_converters": "converters off (p = 0, no ADC clipping)",
    "abl_weight_per_column": "weight scaling per column",
    "abl_ideal_device": "ideal device (converters and output noise only)",
    "abl_digital_first": "first layer (stem) digital",
    "abl_digital_last": "last layer (fc) digital",
}
FOLLOWUP_TEXT = {
    "fu_p4_cal": "p = 4, static input range + ADC calibrated (99.9th pct)",
    "fu_pin4_pout8": "p_in = 4, p_out = 8, static input range + ADC calibrated",
    "fu_am_p4_stem_dig": "p = 4, abs-max input, ADC calibrated, stem digital",
    "fu_am_p4_stem_8": "p = 4, abs-max input, ADC calibrated, stem at p = 8",
    "fu_am_pin8_pout4": "p_in = 8, p_out = 4, abs-max input, ADC calibrated",
    "fu_am_pin4_pout8": "p_in = 4, p_out = 8, abs-max input, ADC calibrated",
    "fu_am_p4_first_last_dig": "p = 4, abs-max input, ADC calibrated, stem and fc digital",
}



def time_of(row):
    """The inference time of a CSV row, in either spelling of the column."""
    return float(row["t_inference"] if "t_inference" in row else row["t_inference_s"])

def load(results):
    runs = {}
    for path in sorted(glob.glob(os.path.join(results, "*__*.csv"))):
        model, tag = os.path.basename(path)[:-4].split("__", 1)
        with open(path) as f:
            rows = list(csv.DictReader(f))
        if rows:
            runs[(model, tag)] = rows
    return runs


def order(model):
    return MODEL_ORDER.index(model) if model in MODEL_ORDER else len(MODEL_ORDER)


def cell(row):
    fp32 = float(row["fp32_acc"])
    m, s = float(row["acc_mean"]), float(row["acc_std"])
    return f"{100 * m:.2f} ± {100 * s:.2f} ({100 * (m - fp32):+.2f})"


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    runs = load(sys.argv[1])
    if not runs:
        sys.exit(f"no <model>__<tag>.csv files in {sys.argv[1]}")
    models = sorted({m for m, _ in runs}, key=order)
    tags = [t for t in TAG_TEXT if any((m, t) in runs for m in models)]
    tags += sorted({t for _, t in runs} - set(tags) - set(ABLATION_TEXT) - set(FOLLOWUP_TEXT))
    for tag in tags:
        rows_by_model = {m: runs[(m, tag)] for m in models if (m, tag) in runs}
        times = sorted({time_of(r) for rows in rows_by_model.values() for r in rows})
        print(f"### {TAG_TEXT.get(tag, tag)}  (`{tag}`)\n")
        print("| model | FP32 | " + " | ".join(TIME_NAMES.get(t, f"{t:g} s") for t in times) + " |")
        print("|---|---|" + "---|" * len(times))
        for m, rows in rows_by_model.items():
            by_t = {time_of(r): r for r in rows}
            fp32 = 100 * float(rows[0]["fp32_acc"])
            cells = [cell(by_t[t]) if t in by_t else "" for t in times]
            print(f"| {m} | {fp32:.2f} | " + " | ".join(cells) + " |")
        trials = {r["trials"] for rows in rows_by_model.values() for r in rows}
        print(f"\nAccuracy % mean ± std over {'/'.join(sorted(trials))} trials (change from FP32 in points).\n")
    for title, texts in (("Ablation", ABLATION_TEXT), ("Follow-up", FOLLOWUP_TEXT)):
        for m in models:  # one table per model: each variant a row
            variants = [t for t in texts if (m, t) in runs]
            if variants:
                variant_table(title, m, variants, texts, runs)


def variant_table(title, m, variants, texts, runs):
    times = sorted({time_of(r) for t in variants for r in runs[(m, t)]})
    fp32 = 100 * float(runs[(m, variants[0])][0]["fp32_acc"])
    print(f"### {title}: {m} (FP32 {fp32:.2f} % on these images)\n")
    print("| variant | " + " | ".join(TIME_NAMES.get(t, f"{t:g} s") for t in times) + " |")
    print("|---|" + "---|" * len(times))
    for t in variants:
        by_t = {time_of(r): r for r in runs[(m, t)]}
        print(f"| {texts[t]} | " + " | ".join(cell(by_t[x]) if x in by_t else "" for x in times) + " |")
    print()

if __name__ == "__main__":
    main()
