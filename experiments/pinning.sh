#!/usr/bin/env bash
# What pinning buys: sum_squares (Rust and NumPy) on a quiet host, then with a noisy
# neighbour (a busy loop this script starts on core 0 and stops at the end) pinned to the
# highest core, then with the same neighbour not pinned at all.
source "$(dirname "$0")/common.sh"
impls=(--task sum_squares --impl rs-scalar --impl py-numpy)
quiet=$(run "${impls[@]}" --cpus 1 "$@")
taskset -c 0 sh -c 'while :; do :; done' &
neighbour=$!
trap 'kill "$neighbour" 2>/dev/null || true' EXIT
pinned=$(run "${impls[@]}" --cpus 1 "$@")
unpinned=$(run "${impls[@]}" --no-pin "$@")
kill "$neighbour"
compare pinning "$quiet" "$pinned" "$unpinned"
