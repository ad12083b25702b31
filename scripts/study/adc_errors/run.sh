#!/bin/bash
# The ADC-error study of docs/adc-errors.md: zoo resnet_hwa (first 500 test images) and
# lenet5_hwa (first 1000), 2 Monte Carlo trials, t = 1 h, 256 x 256 tiles, 8-bit converters,
# per-ADC offset std and INL bow of 0, 0.5, 1, 2 LSB of the default full scale (out_bound 10 over
# 127 levels: 1 LSB = 0.0787402 normalised output units), GDC on/off x calibration on/off.
#   scripts/study/adc_errors/run.sh BUILD_DIR OUT_DIR   (then plot.py OUT_DIR)
set -euo pipefail
src="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
bin="$(realpath "${1:-build}")/bin/pcmsim"
out="$(realpath -m "${2:-adc_errors_study}")"
mkdir -p "$out"
lsb=(0 0.0393701 0.0787402 0.15748)   # 0, 0.5, 1, 2 LSB
values=$(IFS=,; echo "${lsb[*]}")
for model in resnet_hwa:500 lenet5_hwa:1000; do
  name=${model%%:*}; limit=${model##*:}
  for setting in adc-offset-std adc-inl; do
    "$bin" sweep --model "$src/zoo/$name.h5" --limit "$limit" --trials 2 --t-inference 3600 \
      --tile 256x256 --gdc on,off --calibrate on,off --"$setting" "$values" \
      --out "$out/${name}_${setting}.h5" > "$out/${name}_${setting}.log" 2>&1
  done
done
