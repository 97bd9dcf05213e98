#!/usr/bin/env bash
# Stability: three independent runs (new containers, another interleaving seed each) of
# sum_squares in Rust and NumPy and of start-up; the spread of their medians per case.
source "$(dirname "$0")/common.sh"
impls=(--impl rs-scalar --impl py-numpy --impl rs-hello --impl py-bare)
bundles=()
for seed in 1 2 3; do
  bundles+=("$(run --task sum_squares --task startup "${impls[@]}" --seed "$seed" \
    --cpus "${CPUS:-1}" "$@")")
done
compare stability "${bundles[@]}"
