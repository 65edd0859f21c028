#!/usr/bin/env bash
# Formatting CI step: every C source and header of src/ include/ tests/ bench/ tools/ must be
# what clang-format makes of it with the repository's .clang-format. Reports every file that
# differs (with clang-format's own diagnostics) and fails if any does; fix with
#   clang-format -i <file>...
# Usage: tools/ci/format.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
bash tools/install-deps.sh test
[ -f .clang-format ] || { echo "format.sh: FAIL, .clang-format is missing"; exit 1; }

mapfile -t files < <(find src include tests bench tools -type f \
  \( -name '*.c' -o -name '*.h' -o -name '*.cc' \) | LC_ALL=C sort)
[ ${#files[@]} -gt 0 ] || { echo "format.sh: FAIL, no sources found"; exit 1; }

bad=()
for f in "${files[@]}"; do
  clang-format --style=file --dry-run -Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
if [ ${#bad[@]} -gt 0 ]; then
  for f in "${bad[@]}"; do
    clang-format --style=file --dry-run -Werror "$f" 2>&1 | head -n 20 || true
  done
  echo "format.sh: FAIL, ${#bad[@]} of ${#files[@]} files differ from clang-format:"
  printf '  %s\n' "${bad[@]}"
  exit 1
fi
echo "format.sh: PASS, ${#files[@]} files formatted"
