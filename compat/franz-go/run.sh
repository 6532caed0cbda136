#!/usr/bin/env bash
# franz-go's kgo integration tests against Sluice: fetches franz-go (pinned below) into the Go
# module cache, compiles pkg/kgo's test binary (cached outside the repository), starts a Sluice
# node, and runs the tests that talk to a broker one by one, each with its own timeout.
# See --help and README.md beside this file.
set -euo pipefail

FRANZ_GO_VERSION=v1.22.3
# franz-go's helpers (pkg/kgo/helpers_test.go) that reach the brokers: a test that calls one of
# them, directly or through other test functions, is an integration test.
BROKER_HELPERS=adm,getSeedBrokers,newTestClient,testClientOpts,tmpTopic,tmpTopicPartitions,tmpNamedTopicPartitions,tmpGroup,tmpShareGroup,scramSeeds,oauthSeeds

here=$(cd "$(dirname "$0")" && pwd)
cache="${SLUICE_FRANZ_CACHE:-$HOME/.cache/sluice-franz-go}"
testbin="$cache/kgo-$FRANZ_GO_VERSION.test"
# The integration tests that need what Sluice does not serve yet: they fail (or time out) for
# that reason. A failure of one of these is reported as expected, and does not fail the run.
# (TestTxnEtl was one until transactions landed.)
declare -A NEEDS=()
work=""
node_pid=""
node_addr=""
runner_pid=""

usage() {
  cat <<USAGE
Usage: compat/franz-go/run.sh [options] [TestName ...]

Fetches franz-go $FRANZ_GO_VERSION (go get, into \$(go env GOMODCACHE)), compiles pkg/kgo's
test binary once (cached in $cache), starts a Sluice node and runs franz-go's integration tests
(the pkg/kgo tests that reach a broker) against it, each in its own process with its own
timeout, with KGO_SEEDS=<the node> and KGO_TEST_RF=1. Prints a line per test (PASS, FAIL,
TIMEOUT or SKIP), the failure lines of each failed test, and closes with
"franz-go: N passed, N failed, N skipped"; exits non-zero if a test failed other than one
known to need a feature Sluice lacks (NEEDS in this script).

  (no arguments)   every integration test of pkg/kgo
  TestName ...     only these tests (any pkg/kgo test, unit tests included)
  --all            every test of pkg/kgo, unit tests included
  --quick          leave out the tests known to need what Sluice lacks (none now; TestTxnEtl was one, waiting for its
                   timeout)
  --list           print the tests that would run, with their kind (broker|unit), and exit
  --build-only     fetch and compile the test binary, and exit

Environment:
  SLUICE_BIN                  the sluice binary (default: \$CARGO_TARGET_DIR/debug/sluice after
                              cargo test --workspace --no-run; CARGO_TARGET_DIR defaults to
                              \$HOME/.cache/sluice-target)
  SLUICE_FRANZ_TEST_TIMEOUT   seconds one test may take (default 300)
  SLUICE_FRANZ_KEEP=1         keep the logs and the node's data also when every test passed
  KGO_TEST_RECORDS            records the ETL tests produce and chain through three groups
                              (franz-go's default, 500000, if unset: TestGroupETL's static
                              cooperative sub-test outlasts the group's second rebalance only then)
  KGO_LOG_LEVEL               franz-go's client log level in the tests (info, debug, none)
USAGE
}

build() {
  [ -x "$testbin" ] && return 0
  command -v go >/dev/null || { echo "franz-go tests need Go (go.mod of franz-go $FRANZ_GO_VERSION: go 1.26)" >&2; exit 2; }
  mkdir -p "$cache/mod"
  echo "franz-go tests: fetching franz-go $FRANZ_GO_VERSION and compiling pkg/kgo's tests" >&2
  (
    cd "$cache/mod"
    [ -e go.mod ] || go mod init sluice-franz-go-tests >/dev/null 2>&1
    timeout 10m go get "github.com/twmb/franz-go/pkg/kgo@$FRANZ_GO_VERSION" >/dev/null
    timeout 20m nice go test -c -o "$testbin.tmp" github.com/twmb/franz-go/pkg/kgo
  )
  mv "$testbin.tmp" "$testbin"
}

# The directory of franz-go's pkg/kgo in the module cache.
kgo_src() {
  echo "$(cd "$cache/mod" && go env GOMODCACHE)/github.com/twmb/franz-go@$FRANZ_GO_VERSION/pkg/kgo"
}

# NAME KIND FILE, a line per Test function of pkg/kgo.
list_tests() {
  (cd "$here" && go run brokertests.go "$(kgo_src)" "$BROKER_HELPERS")
}

# A node as franz-go's CI runs Kafka (the apache/kafka image's server.properties: one
# partition a topic, topics auto-created, groups rebalancing with no initial delay).
start_node() {
  "$SLUICE_BIN" start --config /nonexistent \
    --override listeners=PLAINTEXT://127.0.0.1:0 \
    --override "log.dirs=$work/data" \
    --override num.partitions=1 \
    --override auto.create.topics.enable=true \
    --override group.initial.rebalance.delay.ms=0 \
    --override connect.enable=false \
    --override ksql.enable=false \
    >>"$work/sluice.log" 2>&1 &
  node_pid=$!
  node_addr=""
  for _ in $(seq 300); do
    node_addr=$(sed -n 's/^Sluice listening on PLAINTEXT:\/\/\([^ ]*\).*/\1/p' "$work/sluice.log" | tail -1)
    [ -n "$node_addr" ] && break
    kill -0 "$node_pid" 2>/dev/null || break
    sleep 0.2
  done
  if [ -z "$node_addr" ]; then
    tail -20 "$work/sluice.log" >&2
    echo "the Sluice node did not start" >&2
    exit 2
  fi
}

stop_node() {
  [ -n "$node_pid" ] || return 0
  kill "$node_pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$node_pid" 2>/dev/null || break; sleep 0.2; done
  kill -9 "$node_pid" 2>/dev/null || true
  wait "$node_pid" 2>/dev/null || true
  node_pid=""
}

cleanup() {
  [ -z "$runner_pid" ] || kill "$runner_pid" 2>/dev/null || true
  stop_node
  [ -z "$work" ] || [ -n "${SLUICE_FRANZ_KEEP:-}" ] || rm -rf "$work"
}

# Runs one test in its own test binary process; prints its line and records "STATUS SECS".
run_one() {
  local test=$1 log="$work/logs/$1.log" secs rc=0 status start=$SECONDS limit
  limit=${SLUICE_FRANZ_TEST_TIMEOUT:-300}
  # The test binary's own -test.timeout panics with every goroutine's stack; timeout(1) a
  # little later is the backstop.
  (
    cd "$work/cwd"
    exec env KGO_SEEDS="$node_addr" KGO_TEST_RF=1 \
      timeout -k 10 $((limit + 30)) nice "$testbin" -test.run "^${test}\$" -test.count=1 \
      -test.v -test.timeout "${limit}s"
  ) >"$log" 2>&1 &
  runner_pid=$!
  wait "$runner_pid" || rc=$?
  runner_pid=""
  secs=$((SECONDS - start))
  if [ "$rc" = 124 ] || [ "$rc" = 137 ] || grep -q '^panic: test timed out' "$log"; then
    status=TIMEOUT
  elif grep -q "^--- FAIL: $test " "$log" || [ "$rc" != 0 ]; then
    status=FAIL
  elif grep -q "^--- SKIP: $test " "$log"; then
    status=SKIP
  elif grep -q "^--- PASS: $test " "$log"; then
    status=PASS
  else
    status=FAIL # ran nothing: no such test?
  fi
  echo "$status $secs" >"$work/results/$test"
  # What the test skipped, and why (go test -v prints t.Skip's message before "--- SKIP").
  local note="" nsub
  if [ "$status" = SKIP ]; then
    note=$(grep -a -B1 "^--- SKIP: $test " "$log" | grep -a -E '_test\.go:[0-9]+: ' | head -1 | sed -E 's/^\s*[a-z0-9_]+_test\.go:[0-9]+: //')
  else
    nsub=$(grep -a -c -E "^\s+--- SKIP: $test/" "$log" || true)
    [ "$nsub" = 0 ] || note="$nsub sub-tests skipped: $(grep -a -E "^\s+--- SKIP: $test/" "$log" | sed -E "s/^\s+--- SKIP: $test\/([^ ]*).*/\1/" | tr '\n' ' ')"
  fi
  [ "$status" = PASS ] || [ "$status" = SKIP ] || [ -z "${NEEDS[$test]:-}" ] || note="needs ${NEEDS[$test]%%:*}"
  printf '%-56s %-8s %4ss  %s\n' "$test" "$status" "$secs" "$note"
  if ! kill -0 "$node_pid" 2>/dev/null; then
    echo "the Sluice node died during $test; its log's end:" >&2
    tail -30 "$work/sluice.log" >&2
    echo "$test: the node died" >>"$work/node-deaths"
    node_pid=""
    start_node
  fi
}

main() {
  local test all=0 list=0 quick=0 selected=() tests=() started=$SECONDS
  while [ $# -gt 0 ]; do
    case "$1" in
      -h | --help) usage; exit 0 ;;
      --build-only) build; echo "built: $testbin"; exit 0 ;;
      --all) all=1 ;;
      --list) list=1 ;;
      --quick) quick=1 ;;
      Test*) selected+=("$1") ;;
      *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
  done

  build
  if [ "$list" = 1 ]; then
    if [ ${#selected[@]} -gt 0 ]; then printf '%s\n' "${selected[@]}"
    elif [ "$all" = 1 ]; then list_tests
    else list_tests | awk '$2 == "broker"'
    fi
    exit 0
  fi
  if [ ${#selected[@]} -gt 0 ]; then mapfile -t tests < <(printf '%s\n' "${selected[@]}" | awk '!seen[$0]++')
  elif [ "$all" = 1 ]; then mapfile -t tests < <(list_tests | awk '{ print $1 }')
  else mapfile -t tests < <(list_tests | awk '$2 == "broker" { print $1 }')
  fi
  if [ "$quick" = 1 ]; then
    local kept=()
    for test in "${tests[@]}"; do [ -n "${NEEDS[$test]:-}" ] || kept+=("$test"); done
    tests=("${kept[@]}")
  fi
  [ ${#tests[@]} -gt 0 ] || { echo "no tests found in $(kgo_src)" >&2; exit 2; }

  SLUICE_BIN="${SLUICE_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/sluice-target}/debug/sluice}"
  [ -x "$SLUICE_BIN" ] || { echo "no sluice binary at $SLUICE_BIN (set SLUICE_BIN)" >&2; exit 2; }
  work=$(mktemp -d "${TMPDIR:-/tmp}/sluice-franz-go.XXXXXX")
  mkdir -p "$work/logs" "$work/results" "$work/cwd"
  trap cleanup EXIT
  trap 'exit 130' INT TERM
  start_node
  echo "franz-go $FRANZ_GO_VERSION kgo tests against the Sluice node on $node_addr ($SLUICE_BIN): ${#tests[@]} tests"

  for test in "${tests[@]}"; do run_one "$test"; done
  stop_node

  local passed=() failed=() skipped=() expected=() status secs
  for test in "${tests[@]}"; do
    read -r status secs <"$work/results/$test"
    case "$status" in
      PASS) passed+=("$test") ;;
      SKIP) skipped+=("$test") ;;
      *) if [ -n "${NEEDS[$test]:-}" ]; then expected+=("$test($status)"); else failed+=("$test($status)"); fi ;;
    esac
  done
  echo
  echo "franz-go $FRANZ_GO_VERSION kgo tests against Sluice: ${#tests[@]} tests in $((SECONDS - started))s"
  for test in "${failed[@]}" "${expected[@]}"; do
    echo "--- $test: $work/logs/${test%%(*}.log"
    [ -z "${NEEDS[${test%%(*}]:-}" ] || echo "    expected: needs ${NEEDS[${test%%(*}]}"
    # go test's failure lines (FILE_test.go:LINE: message), the failed (sub)tests, a panic and,
    # on a timeout, the (sub)tests still running.
    grep -a -E '^\s+[a-z0-9_]+_test\.go:[0-9]+: |^\s*--- FAIL: |^panic: |^\s+running tests:|^\s+Test[^ ]* \([0-9]' \
      "$work/logs/${test%%(*}.log" |
      grep -av -E 'deleting (topic|group)|completed in|does not support|testConsumer sendErr' |
      awk '!seen[$0]++' | head -12 | cut -c1-300
  done
  [ ! -e "$work/node-deaths" ] || { echo "node deaths:"; cat "$work/node-deaths"; }
  [ ${#skipped[@]} -eq 0 ] || echo "skipped: ${skipped[*]}"
  [ ${#expected[@]} -eq 0 ] || echo "failed as expected (need what Sluice lacks): ${expected[*]}"
  [ ${#failed[@]} -eq 0 ] || echo "failed: ${failed[*]}"
  [ $((${#failed[@]} + ${#expected[@]})) -eq 0 ] || SLUICE_FRANZ_KEEP=1
  [ -z "${SLUICE_FRANZ_KEEP:-}" ] || echo "logs: $work/logs, node log: $work/sluice.log"
  echo "franz-go: ${#passed[@]} passed, $((${#failed[@]} + ${#expected[@]})) failed (${#expected[@]} of them needing what Sluice lacks), ${#skipped[@]} skipped"
  [ ${#failed[@]} -eq 0 ]
}

# One line, so that bash has read it all before it runs (the file may change meanwhile).
main "$@"; exit $?
