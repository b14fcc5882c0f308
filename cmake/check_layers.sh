#!/usr/bin/env bash
# check_layers.sh LAYERS_FILE SOURCE_DIR
# Checks every #include in the project against the layering rule each folder's CMakeLists.txt
# states with mimic_layer(MAY_INCLUDE ... [TESTS_MAY_INCLUDE ...]) (collected into LAYERS_FILE,
# one "folder: prefixes | test-only prefixes" line per folder). Only governed includes are checked: the project's own folders and the
# third-party libraries a layer must opt into (below); the C++ library, POSIX and Abseil are free
# everywhere, GoogleTest in *_test.cc and test helpers. A file is governed by the nearest folder
# above it that has a rule. Prints each violation as FILE:LINE: ... and exits 1 when any.
set -euo pipefail
layers=$1 src=$2
governed='^(common/|agent/|controller/|tests/|bench/|mimic/|grpc/|grpcpp/|grpc\+\+/|google/protobuf/|toml\+\+/|zip\.h$|sqlite3\.h$|libpq-fe\.h$|yaml-cpp/|openssl/|gtest/|gmock/)'
declare -A rule=() test_rule=()
while IFS= read -r line; do
  [ -n "$line" ] || continue
  spec=${line#*: }
  rule[${line%%:*}]=${spec%%|*}
  test_rule[${line%%:*}]=$([[ $spec == *"|"* ]] && echo "${spec#*|}")
done <"$layers"
[ ${#rule[@]} -gt 0 ] || { echo "check_layers: no rules in $layers" >&2; exit 1; }
bad=0 files=0
cd "$src"
while IFS= read -r -d '' f; do
  files=$((files + 1))
  dir=$(dirname "$f")
  d=$dir
  while [ -z "${rule[$d]+x}" ] && [ "$d" != . ]; do d=$(dirname "$d"); done
  if [ -z "${rule[$d]+x}" ]; then
    echo "$f: no mimic_layer() rule for its folder or any above it" >&2
    bad=1
    continue
  fi
  is_test=0
  case "$f" in *_test.cc|*_test_util.*|*_test_fixture.h|tests/*) is_test=1 ;; esac
  n=0
  while IFS= read -r l; do
    n=$((n + 1))
    [[ $l =~ ^[[:space:]]*#[[:space:]]*include[[:space:]]*[\"\<]([^\"\>]+)[\"\>] ]] || continue
    inc=${BASH_REMATCH[1]}
    [[ $inc =~ $governed ]] || continue
    # A folder's own files always see each other.
    [[ $inc == "$dir/"* ]] && continue
    if [ $is_test = 1 ] && [[ $inc == gtest/* || $inc == gmock/* ]]; then continue; fi
    ok=0
    allowed=${rule[$d]}
    [ $is_test = 0 ] || allowed="$allowed ${test_rule[$d]}"
    for p in $allowed; do
      if [[ $inc == "$p"* ]]; then ok=1; break; fi
    done
    if [ $ok = 0 ]; then
      echo "$f:$n: includes \"$inc\", which layer $d may not (it may include: $(echo $allowed))"
      bad=1
    fi
  done <"$f"
done < <(find common agent controller tests \( -name '*.h' -o -name '*.cc' \) -print0 | sort -z)
echo "check_layers: $files files checked against ${#rule[@]} layer rules"
exit $bad
