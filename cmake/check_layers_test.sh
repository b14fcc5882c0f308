#!/usr/bin/env bash
# check_layers_test.sh CHECKER LAYERS_FILE
# Shows that the layering check can fail: in a scratch tree laid out like the project, with the
# project's own rules, a lower layer that includes a higher one (common/base -> agent/engine,
# agent/engine -> agent/steps, controller/audit -> controller/rollout, common/base -> toml++,
# a step -> the test MI home generator)
# must each be reported, and a clean tree must pass.
set -euo pipefail
checker=$1 layers=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mk() { mkdir -p "$tmp/$(dirname "$1")"; printf '%s\n' "$2" >"$tmp/$1"; }
mk common/base/a.h '#include "common/base/fs.h"'
mk agent/engine/b.h '#include "common/base/a.h"'
mk agent/steps/c.cc '#include "agent/engine/b.h"'
mk controller/audit/d.cc '#include "common/base/a.h"'
mk tests/e.cc '#include "controller/audit/d.h"'
bash "$checker" "$layers" "$tmp" >/dev/null || { echo "FAIL: a clean tree was refused"; exit 1; }
fail=0
expect_refused() {
  local file=$1 include=$2
  local saved
  saved=$(cat "$tmp/$file")
  printf '#include "%s"\n' "$include" >>"$tmp/$file"
  if out=$(bash "$checker" "$layers" "$tmp" 2>&1); then
    echo "FAIL: $file including $include was not refused"; fail=1
  elif ! grep -q "^$file:2: includes \"$include\"" <<<"$out"; then
    echo "FAIL: $file including $include: the report does not name the file and line:"; echo "$out"; fail=1
  else
    echo "ok: $(grep "^$file:2" <<<"$out")"
  fi
  printf '%s\n' "$saved" >"$tmp/$file"
}
expect_refused common/base/a.h agent/engine/b.h
expect_refused agent/engine/b.h agent/steps/steps.h
expect_refused controller/audit/d.cc controller/rollout/rollout.h
expect_refused common/base/a.h toml++/toml.h
expect_refused agent/steps/c.cc controller/audit/audit.h
# The test MI home generator: a step's test may use it, the step itself may not.
expect_refused agent/steps/c.cc tests/mi_home/mi_home.h
mk agent/steps/c_test.cc '#include "tests/mi_home/mi_home.h"'
bash "$checker" "$layers" "$tmp" >/dev/null || { echo "FAIL: a test using tests/mi_home was refused"; fail=1; }
exit $fail
