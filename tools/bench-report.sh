#!/usr/bin/env bash
# Builds spattn-bench (Release), runs a benchmark grid and leaves a report:
#   bench-report/report.md      tables per problem: time, GFLOP/s, % of peak, speedups, Targets
#   bench-report/results.json   Google Benchmark JSON (context, every run, every counter)
#   bench-report/console.txt    everything spattn-bench printed
#   bench-report/plots/*.png    time and GFLOP/s versus sparsity, one line per ISA/baseline
# While it runs it shows how far it has come (repetition i of n, elapsed, estimate left); at
# the end it prints where the report is and its Targets table.
#
#   tools/bench-report.sh [--quick | --full | --targets] [--no-deps] [--build-dir DIR]
#                         [--out DIR] [-- extra spattn-bench / --benchmark_* flags]
#
# Default grid (five interleaved repetitions each, medians reported): about 18 minutes on two
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
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "bench-report.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done

[ $deps = 1 ] && "$root/tools/install-deps.sh" bench

jobs="$(nproc 2>/dev/null || echo 2)"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DSPATTN_BUILD_BENCH=ON \
      -DSPATTN_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" --target spattn-bench spattn-info -j "$jobs"

mkdir -p "$out"
rm -f "$out"/plots/*.png "$out"/plots/*.dat
args=()
reps=5
case "$mode" in
  --quick|--full) args+=("$mode") ;;
  --targets)
    # the entries the report's Targets table reads, as bench_report.py lists them, for
    # avx512 or, on a CPU without it, the ISA this CPU runs (the float32 kernels of the bf16
    # tiers are those of avx512 and neon)
    isa=$("$build/tools/spattn-info" | sed -n 's/^auto selects: //p')
    case "$isa" in
      avx512bf16|avx512amx|"") isa=avx512 ;;
      neonbf16) isa=neon ;;
    esac
    args+=("--benchmark_filter=$(python3 "$root/tools/bench_report.py" --targets-filter "$isa")")
    reps=15 ;;
esac
# quick: a handful of iterations each, enough to prove every benchmark runs and reports
[ "$mode" = "--quick" ] && args+=(--benchmark_min_time=0.01)
# otherwise five repetitions (fifteen for --targets) of 0.3 s, interleaved at random across the
# whole run (Google Benchmark's documented way to lower run-to-run variance) and reported as
# medians: on a shared VM a neighbour's burst lasts minutes, and with each benchmark's
# repetitions back to back it took all of them.
[ "$mode" != "--quick" ] && args+=(--benchmark_repetitions=$reps --benchmark_min_time=0.3
                                   --benchmark_enable_random_interleaving=true)
commit="$(git -C "$root" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
if [ -n "$(git -C "$root" status --porcelain 2>/dev/null | grep -v '^?? bench-report/' || true)" ]; then
  commit="$commit (with uncommitted changes)"
fi

# How many repetitions the run holds: the entries spattn-bench lists for these arguments, times
# the repetitions (an extra --benchmark_repetitions given after -- wins, as it does for it).
n_entries=$("$build/bench/spattn-bench" "${args[@]}" "${extra[@]}" --benchmark_list_tests=true \
            2>/dev/null | grep -c . || true)
n_reps=1
[ "$mode" != "--quick" ] && n_reps=$reps
for a in "${extra[@]}"; do
  case "$a" in --benchmark_repetitions=*) n_reps="${a#*=}" ;; esac
done
total=$(( n_entries * n_reps ))
args+=(--benchmark_out="$out/results.json" --benchmark_out_format=json)

mmss() { printf '%d:%02d' $(( $1 / 60 )) $(( $1 % 60 )); }

progress="$out/.progress"
: > "$progress"
start=$(date +%s)
echo "bench-report: running spattn-bench: $n_entries entries x $n_reps repetition(s) = $total;" \
     "its output goes to $out/console.txt"
SPATTN_BENCH_PROGRESS="$progress" "$build/bench/spattn-bench" "${args[@]}" "${extra[@]}" \
  > "$out/console.txt" 2>&1 &
pid=$!
# A background job of a script ignores Ctrl-C, so stop it when the script ends early.
trap 'kill "$pid" 2>/dev/null || true; rm -f "$progress"' EXIT
trap 'echo; exit 130' INT TERM

tty=0
[ -t 1 ] && tty=1
warned=0 first="" last_print=0
while kill -0 "$pid" 2>/dev/null; do
  sleep 1
  if [ $warned = 0 ] && grep -q 'Library was built as DEBUG' "$out/console.txt" 2>/dev/null; then
    warned=1
    [ $tty = 1 ] && printf '\r\033[K'
    echo "bench-report: the console's \"Library was built as DEBUG\" is about Google Benchmark's" \
         "own library (Debian builds it so), not spattn: spattn and spattn-bench are built" \
         "$(sed -n 's/^spattn_build_type: //p' "$out/console.txt" | head -n 1)."
  fi
  now=$(date +%s)
  # the line of the repetition running now; the ones before it are done
  line=$(tail -n 1 "$progress" 2>/dev/null || true)
  started=${line%% *}
  case "$started" in ''|*[!0-9]*) started=0 ;; esac
  done_n=$(( started > 0 ? started - 1 : 0 ))
  [ $started -gt 0 ] && [ -z "$first" ] && first=$now
  left="estimating"
  if [ $done_n -gt 0 ] && [ $total -gt $done_n ]; then
    left="about $(mmss $(( (now - first) * (total - done_n) / done_n ))) left"
  fi
  msg="repetition $started of $total, $(mmss $(( now - start ))) elapsed, $left"
  # before the first repetition spattn-bench measures the FMA peak and the read bandwidth
  [ $started = 0 ] && msg="measuring the FMA peaks and the read bandwidth first, $(mmss $(( now - start ))) elapsed"
  if [ $tty = 1 ]; then
    cols=$(tput cols 2>/dev/null || echo 100)
    printf '\r\033[K%s' "$(printf '%s  %s' "$msg" "${line#* }" | cut -c1-$(( cols - 1 )))"
  elif [ $(( now - last_print )) -ge 30 ]; then
    echo "bench-report: $msg"
    last_print=$now
  fi
done
status=0
wait "$pid" || status=$?
[ $tty = 1 ] && printf '\r\033[K'
took=$(( $(date +%s) - start ))
echo "spattn-bench took $took s" >> "$out/console.txt"
if [ $status != 0 ]; then
  echo "bench-report: spattn-bench failed (status $status); the end of $out/console.txt:" >&2
  tail -n 20 "$out/console.txt" >&2
  exit $status
fi
echo "bench-report: spattn-bench ran $total repetitions in $(mmss $took)"

python3 "$root/tools/bench_report.py" "$out/results.json" "$out" "$commit"
if command -v gnuplot >/dev/null; then
  (cd "$out/plots" && gnuplot plots.gp)
else
  echo "bench-report.sh: gnuplot not found, no PNGs (Debian: gnuplot-nox)" >&2
fi
echo
echo "report: $out/report.md"
echo
python3 "$root/tools/bench_report.py" --targets-text "$out/results.json"
