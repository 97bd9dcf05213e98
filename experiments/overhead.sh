#!/usr/bin/env bash
# What the container costs: the same runner and programs (the images' own files) in a
# hardened container and without one (chroot, needs root), both pinned to the same core.
source "$(dirname "$0")/common.sh"
sel=(--task sum_squares --task startup --impl rs-scalar --impl py-numpy --impl rs-hello
  --impl py-bare --cpus "${CPUS:-1}")
docker=$(run "${sel[@]}" "$@")
chroot=$(run "${sel[@]}" --local "$@")
compare overhead "$docker" "$chroot"
