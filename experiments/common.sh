# Sourced by the experiment scripts: how to call the harness and where results go.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
HARNESS=${HARNESS:-python3 -m harness.cli}
RESULTS=${RESULTS:-results}
# Each experiment writes its comparison here, next to the bundles it compares.
OUT=${OUT:-$RESULTS/experiments}
mkdir -p "$OUT"

# `harness run` prints the bundle's path on stdout (progress goes to stderr).
run() { $HARNESS run --results "$RESULTS" "$@"; }

# Compare bundles: print the tables and keep them as Markdown in $OUT/$1.md.
compare() {
  local name=$1
  shift
  $HARNESS compare "$@" --markdown "$OUT/$name.md"
  echo "Saved: $OUT/$name.md" >&2
}
