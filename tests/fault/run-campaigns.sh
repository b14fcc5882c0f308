#!/usr/bin/env bash
# Runs the fault campaigns (tests/fault/) at a chosen size, from a built tree:
#
#   bash tests/fault/run-campaigns.sh [BUILD_DIR] [TRIALS] [SEED]
#
# TRIALS (default 500) sizes the agent-kill campaign; the controller-kill one runs TRIALS/2 and
# each disk-full one TRIALS/10 (at least the CI sizes). SEED (default: a new one, printed) makes
# a run replayable: MIMIC_FAULT_SEED=SEED MIMIC_FAULT_TRIALS=N build/tests/fault/fault_..._test.
# Each campaign prints one line of figures: "[fault] NAME: T trials, S survived, seed=...".
set -euo pipefail
build=${1:-build}
trials=${2:-500}
seed=${3:-$(( $(date +%s) % 1000000007 ))}
bin="$build/tests/fault"
echo "fault campaigns: trials=$trials seed=$seed build=$build"
run() {  # NAME TRIALS
  local name=$1 n=$2
  echo "== $name ($n trials)"
  MIMIC_FAULT_SEED=$seed MIMIC_FAULT_TRIALS=$n "$bin/$name" 2>&1 | grep -E '^\[fault\]|FAILED|Failure|SKIPPED|PASSED' || true
}
run fault_agent_kill_test "$trials"
run fault_controller_kill_test $(( trials / 2 > 20 ? trials / 2 : 20 ))
run fault_disk_full_test $(( trials / 10 > 6 ? trials / 10 : 6 ))
run fault_agent_cutoff_test 1
