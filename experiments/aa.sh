#!/usr/bin/env bash
# A/A: every sum_squares implementation at every default size runs as two identical twins
# (21 pairs). A pair the statistics call "faster" or "slower" is a false flag.
source "$(dirname "$0")/common.sh"
bundle=$(run --aa --task sum_squares --cpus "${CPUS:-1}" "$@")
$HARNESS report "$bundle" >&2
sed -n '/^## A\/A noise check/,/^## Task/p' "$bundle/report.md" | sed '$d' | tee "$OUT/aa.md"
echo "Saved: $OUT/aa.md (report: $bundle/report.html)" >&2
