#!/usr/bin/env bash
# Builds spattn-bench (Release), runs a benchmark grid and leaves a report:
#   bench-report/results.json   Google Benchmark JSON (context, every run, every counter)
#   bench-report/console.txt    what the run printed
#   bench-report/report.md      tables per problem: time, GFLOP/s, % of peak, speedups
#   bench-report/plots/*.png    time and GFLOP/s versus sparsity, one line per ISA/baseline
#
#   tools/bench-report.sh [--quick | --full | --targets] [--no-deps] [--build-dir DIR]
#                         [--out DIR] [-- extra spattn-bench / --benchmark_* flags]
#
# Default grid (five interleaved repetitions each, medians reported): about 12 minutes on two
# cores. --quick: seconds (CI smoke). --full: hours. --targets: only the entries the targets
# of docs/performance.md are computed from, fifteen interleaved repetitions, about 3 minutes.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mode="" deps=1 build="$root/build-bench" out="$root/bench-report" extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --quick|--full|--targets) mode="$1" ;;
    --no-deps) deps=0 ;;
    --build-dir) build="$2"; shift ;;
    --out) out="$2"; shift ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "bench-report.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done

[ $deps = 1 ] && "$root/tools/install-deps.sh" bench

jobs="$(nproc 2>/dev/null || echo 2)"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DSPATTN_BUILD_BENCH=ON \
      -DSPATTN_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" --target spattn-bench -j "$jobs"

mkdir -p "$out"
rm -f "$out"/plots/*.png "$out"/plots/*.dat
args=()
reps=5
case "$mode" in
  --quick|--full) args+=("$mode") ;;
  --targets)
    # the entries the report's Targets table reads, as bench_report.py lists them
    args+=("--benchmark_filter=$(python3 "$root/tools/bench_report.py" --targets-filter)")
    reps=15 ;;
esac
# quick: a handful of iterations each, enough to prove every benchmark runs and reports
[ "$mode" = "--quick" ] && args+=(--benchmark_min_time=0.01)
# otherwise five repetitions (fifteen for --targets) of 0.3 s, interleaved at random across the whole run (Google
# Benchmark's documented way to lower run-to-run variance) and reported as medians: on a
# shared VM a neighbour's burst lasts minutes, and with each benchmark's repetitions back to
# back it took all of them (AVX2 dense 197-222 ms in one run, 139 ms in the next).
[ "$mode" != "--quick" ] && args+=(--benchmark_repetitions=$reps --benchmark_min_time=0.3
                                   --benchmark_enable_random_interleaving=true)
args+=(--benchmark_out="$out/results.json" --benchmark_out_format=json)

commit="$(git -C "$root" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
if [ -n "$(git -C "$root" status --porcelain 2>/dev/null | grep -v '^?? bench-report/' || true)" ]; then
  commit="$commit (with uncommitted changes)"
fi

start=$(date +%s)
"$build/bench/spattn-bench" "${args[@]}" "${extra[@]}" | tee "$out/console.txt"
echo "spattn-bench took $(( $(date +%s) - start )) s" | tee -a "$out/console.txt"

python3 "$root/tools/bench_report.py" "$out/results.json" "$out" "$commit"
if command -v gnuplot >/dev/null; then
  (cd "$out/plots" && gnuplot plots.gp)
else
  echo "bench-report.sh: gnuplot not found, no PNGs (Debian: gnuplot-nox)" >&2
fi
echo "report: $out/report.md"
