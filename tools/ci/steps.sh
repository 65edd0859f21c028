# shellcheck shell=bash
# Sourced by the CI scripts that run several checks and end with a summary: `step NAME CMD...`
# runs CMD, keeps its output in $logs (set before the first step), and records PASS or FAIL
# with the wall time in `results`; `fail` becomes 1 at the first failure. `summary TITLE`
# prints the record and exits with `fail`.
results=()
fail=0
: "${logs:?set logs to a directory before sourcing steps.sh}"

step() {
  local name=$1
  shift
  local t0=$SECONDS log=$logs/step${#results[@]}.log
  echo "=== $name"
  "$@" 2>&1 | tee "$log"
  if [ "${PIPESTATUS[0]}" = 0 ]; then
    results+=("PASS  $name ($((SECONDS - t0)) s)")
  else
    # A CI log may keep only its tail: the summary repeats what failed (Check's failure
    # lines, the first lines of the sanitizers' and memcheck's reports), else the step's
    # last lines.
    local why pat=':[0-9]+:[FE]:|ERROR: |SUMMARY: |runtime error|has encountered a fatal|Tracer caught'
    pat+='|Checks: |: exit [1-9]|^==[0-9]+== +(Invalid|Conditional|Use of|Syscall|Mismatched|.* definitely lost)'
    why=$(grep -E "$pat" "$log" | head -n 16)
    [ -n "$why" ] || why=$(tail -n 8 "$log")
    results+=("FAIL  $name ($((SECONDS - t0)) s)" "$(sed 's/^/      /' <<<"$why")")
    fail=1
  fi
}

summary() { # summary TITLE: e.g. "sanitize.sh"
  echo
  echo "=== ${1%.sh} summary"
  printf '%s\n' "${results[@]}"
  if [ $fail = 0 ]; then echo "$1: PASS"; else echo "$1: FAIL"; fi
  exit $fail
}
