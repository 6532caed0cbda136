#!/usr/bin/env bash
# librdkafka's own test suite against Sluice: builds librdkafka's tests/test-runner from the
# source that the rdkafka-sys crate ships (cached outside the repository), starts a Sluice node,
# and runs the broker tests listed in tests.allow beside this file. See --help and tests.allow.
set -euo pipefail

RDKAFKA_SYS_VERSION=4.10.0 # carries librdkafka 2.12.1, tests/ included
LIBRDKAFKA_VERSION=2.12.1
LIBRDKAFKA_VERSION_HEX=0x020c01 # RD_KAFKA_VERSION in src/rdkafka.h
# The tests need no TLS, SASL/GSSAPI or HTTP (OIDC); zstd and zlib so that 0017 covers every codec.
CONFIGURE_FLAGS=(--disable-ssl --disable-gssapi --disable-curl --enable-zstd --enable-zlib)
# The broker version the tests assume (they skip what an older broker lacks).
TEST_KAFKA_VERSION=3.7.0

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache="${SLUICE_LIBRDKAFKA_CACHE:-$HOME/.cache/sluice-librdkafka}"
src="$cache/librdkafka-$LIBRDKAFKA_VERSION"
stamp="$src/.sluice-built-$LIBRDKAFKA_VERSION-$(echo "${CONFIGURE_FLAGS[*]}" | cksum | cut -d' ' -f1)"
work=""
declare -A node_pids=() # scenario -> pid of its Sluice node

usage() {
  cat <<USAGE
Usage: compat/librdkafka/run.sh [options] [NNNN ...]

Builds librdkafka $LIBRDKAFKA_VERSION's test-runner (once; cached in $cache),
starts a Sluice node (num.partitions=4, auto.create.topics.enable=true, as librdkafka's test
cluster has) and runs librdkafka's broker tests against it: each test number in its own
test-runner process, in full mode (not quick mode -Q), with TEST_KAFKA_VERSION=$TEST_KAFKA_VERSION.
Prints a line per test, the error lines of each failure, and closes with
"librdkafka: N passed, N failed, N skipped"; exits non-zero if any test failed.

  (no arguments)   the tests listed in compat/librdkafka/tests.allow
  NNNN ...         only these tests (NNNN:noautocreate runs NNNN in that scenario, on a node
                   with auto.create.topics.enable=false; NNNN@4.0.0 with that TEST_KAFKA_VERSION)
  --all-broker     every broker test in librdkafka's table, ignoring tests.allow (to measure)
  --list           print the tests that would run, and exit
  --build-only     build the test-runner, and exit
  -j N             run N tests at once (default: \$SLUICE_RDKAFKA_JOBS or 3)

Environment:
  SLUICE_BIN                   the sluice binary (default: \$CARGO_TARGET_DIR/debug/sluice after
                               cargo test --workspace --no-run; CARGO_TARGET_DIR defaults to
                               \$HOME/.cache/sluice-target)
  SLUICE_RDKAFKA_TEST_TIMEOUT  seconds one test number may take (default 1200; 0113 takes ~570)
  SLUICE_RDKAFKA_KEEP=1        keep the logs and the nodes' data also when every test passed
  SUBTESTS, TEST_LEVEL, ...    librdkafka's own variables reach the test-runner, e.g.
                               SUBTESTS=do_test_DeleteRecords: compat/librdkafka/run.sh 0081
USAGE
}

build() {
  [ -e "$stamp" ] && [ -x "$src/tests/test-runner" ] && return 0

  # Headers the suite needs: rapidjson (0053 and 0110 check the statistics JSON against a
  # schema; configure enables WITH_RAPIDJSON only if it finds it), zstd and zlib, and g++.
  local missing=()
  [ -e /usr/include/rapidjson/schema.h ] || missing+=(rapidjson-dev)
  [ -e /usr/include/zstd.h ] || missing+=(libzstd-dev)
  [ -e /usr/include/zlib.h ] || missing+=(zlib1g-dev)
  command -v g++ >/dev/null || missing+=(g++)
  command -v make >/dev/null || missing+=(make)
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      echo "librdkafka tests: installing ${missing[*]}" >&2
      apt-get update -q >/dev/null
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
    else
      echo "librdkafka tests need these Debian packages: ${missing[*]}" >&2
      echo "  apt-get install ${missing[*]}" >&2
      exit 2
    fi
  fi
  # The crate rdkafka-sys ships librdkafka's whole source tree; cargo fetch brings it.
  mkdir -p "$cache/fetch/src"
  cat >"$cache/fetch/Cargo.toml" <<TOML
[package]
name = "sluice-librdkafka-fetch"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
rdkafka-sys = { version = "=$RDKAFKA_SYS_VERSION", default-features = false }

[workspace]
TOML
  : >"$cache/fetch/src/lib.rs"
  (cd "$cache/fetch" && timeout 10m cargo fetch -q)
  local manifest crate
  manifest=$(cd "$cache/fetch" && cargo metadata -q --format-version 1 | python3 -c '
import json, sys
print(next(p["manifest_path"] for p in json.load(sys.stdin)["packages"] if p["name"] == "rdkafka-sys"))')
  crate=$(dirname "$manifest")
  grep -q "RD_KAFKA_VERSION $LIBRDKAFKA_VERSION_HEX" "$crate/librdkafka/src/rdkafka.h" ||
    { echo "$crate does not carry librdkafka $LIBRDKAFKA_VERSION" >&2; exit 2; }

  echo "librdkafka tests: building librdkafka $LIBRDKAFKA_VERSION and its test-runner in $src (3-5 minutes)" >&2
  rm -rf "$src"
  cp -a "$crate/librdkafka" "$src"
  chmod -R u+w "$src"
  local log="$cache/build.log"
  if ! (
    cd "$src"
    timeout 10m ./configure --no-download "${CONFIGURE_FLAGS[@]}"
    timeout 40m nice make -j2 libs
    timeout 40m nice make -j2 -C tests build
  ) >"$log" 2>&1; then
    tail -40 "$log" >&2
    echo "librdkafka build failed; the whole log: $log" >&2
    exit 2
  fi
  grep -q '#define WITH_RAPIDJSON 1' "$src/config.h" ||
    { echo "configure did not find rapidjson (0053, 0110 need it); see $log" >&2; exit 2; }
  touch "$stamp"
}

# Every broker test in librdkafka's table (tests[] in tests/test.c), as NNNN, or NNNN:SCENARIO
# for the entries that need another scenario: the entries without TEST_F_LOCAL (no broker, or
# librdkafka's built-in mock cluster) or TEST_F_MANUAL, in the scenarios default and
# noautocreate (ak23 is Apache Kafka 2.3).
broker_tests() {
  python3 - "$src/tests/test.c" <<'PY'
import re, sys
s = open(sys.argv[1]).read()
body = s[s.index("struct test tests[] = {"):]
body = re.sub(r"/\*.*?\*/", "", body[: body.index("{NULL}};")], flags=re.S)
seen = []
for m in re.finditer(r"_TEST\(", body):
    j, depth = m.end(), 1
    while depth:
        depth += {"(": 1, ")": -1}.get(body[j], 0)
        j += 1
    entry = body[m.end(): j - 1]
    name, flags = [a.strip() for a in entry.split(",")[:2]]
    if "TEST_F_LOCAL" in flags or "TEST_F_MANUAL" in flags:
        continue
    scen = re.search(r'\.scenario\s*=\s*"([^"]*)"', entry)
    for sc in scen.group(1).split(",") if scen else ["default"]:
        key = name[:4] + ("" if sc == "default" else ":" + sc)
        if sc in ("default", "noautocreate") and key not in seen:
            seen.append(key)
print("\n".join(seen))
PY
}

allowed_tests() {
  sed -e 's/#.*//' "$here/tests.allow" | awk 'NF { print $1 }'
}

# Orders tests longest first, by the "~Ns" that tests.allow notes for them (unknown: last), so
# that the longest test does not start last.
longest_first() {
  awk 'NR == FNR {
         line = $0; sub(/^# */, "", line); split(line, f, /[ \t]+/)
         if (match($0, /~[0-9]+s/)) secs[f[1]] = substr($0, RSTART + 1, RLENGTH - 2)
         next
       }
       { print (($1 in secs) ? secs[$1] : 0), FNR, $1 }' "$here/tests.allow" - |
    sort -k1,1nr -k2,2n | awk '{ print $3 }'
}

# A test is NNNN[:SCENARIO][@KAFKA_VERSION][/SUBTEST]: SUBTEST runs only the sub-tests whose
# name holds it (librdkafka's SUBTESTS), for a test some of whose sub-tests wait for a feature.
scenario_of() {
  local test=${1%%/*}
  test=${test%%@*}
  case "$test" in
    *:*) echo "${test#*:}" ;;
    *) echo default ;;
  esac
}

kafka_version_of() {
  local test=${1%%/*}
  case "$test" in
    *@*) echo "${test#*@}" ;;
    *) echo "$TEST_KAFKA_VERSION" ;;
  esac
}

subtest_of() {
  case "$1" in
    */*) echo "${1#*/}" ;;
    *) echo "" ;;
  esac
}

# A test's name in file names.
file_of() {
  local name=${1//:/-}
  name=${name//\//-}
  echo "${name//@/-}"
}

main() {
  local jobs="${SLUICE_RDKAFKA_JOBS:-3}" all=0 list=0 selected=() tests=()
  while [ $# -gt 0 ]; do
    case "$1" in
      -h | --help) usage; exit 0 ;;
      --build-only) build; echo "built: $src/tests/test-runner"; exit 0 ;;
      --all-broker) all=1 ;;
      --list) list=1 ;;
      -j) jobs="$2"; shift ;;
      -j*) jobs="${1#-j}" ;;
      [0-9][0-9][0-9][0-9] | [0-9][0-9][0-9][0-9][:@/]*) selected+=("$1") ;;
      *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
  done

  build

  if [ ${#selected[@]} -gt 0 ]; then
    tests=("${selected[@]}")
  elif [ "$all" = 1 ]; then
    mapfile -t tests < <(broker_tests)
  else
    mapfile -t tests < <(allowed_tests)
  fi
  if [ "$list" = 1 ]; then
    printf '%s\n' "${tests[@]}"
    exit 0
  fi
  [ ${#tests[@]} -gt 0 ] || { echo "no tests selected" >&2; exit 2; }
  local order=()
  mapfile -t order < <(printf '%s\n' "${tests[@]}" | longest_first)

  # The Sluice binary; kafka-topics.sh (bin/ beside this file) runs it too. `cargo test
  # --no-run` rather than `cargo build -p sluice-cli`: after the test command's `cargo test
  # --workspace` it has nothing to do (the same features), and it leaves target/debug/sluice.
  if [ -z "${SLUICE_BIN:-}" ]; then
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sluice-target}"
    (cd "$repo" && timeout 30m nice cargo test -q --workspace --no-run)
    SLUICE_BIN="$CARGO_TARGET_DIR/debug/sluice"
  fi
  SLUICE_BIN=$(realpath "$SLUICE_BIN")
  [ -x "$SLUICE_BIN" ] || { echo "no sluice binary at $SLUICE_BIN" >&2; exit 2; }
  export SLUICE_BIN

  work=$(mktemp -d "${TMPDIR:-/tmp}/sluice-librdkafka.XXXXXX")
  mkdir -p "$work/logs" "$work/results" "$work/pids"
  trap cleanup EXIT
  trap 'exit 130' INT TERM

  # A node for each scenario the tests need, all at once, so that one pool runs every test.
  local started=$SECONDS scenario test
  for scenario in $(for test in "${tests[@]}"; do scenario_of "$test"; done | sort -u); do
    start_node "$scenario"
  done
  for test in "${order[@]}"; do
    while [ "$(running)" -ge "$jobs" ]; do wait -n || true; done
    run_one "$test" 2>/dev/null &
  done
  while [ "$(running)" -gt 0 ]; do wait -n || true; done
  for scenario in "${!node_pids[@]}"; do
    if ! kill -0 "${node_pids[$scenario]}" 2>/dev/null; then
      echo "the Sluice node of scenario $scenario died during the tests; its log's end:" >&2
      tail -30 "$work/sluice-$scenario.log" >&2
    fi
  done
  stop_nodes

  local passed=() failed=() skipped=() status secs log
  mapfile -t tests < <(printf '%s\n' "${tests[@]}" | sort)
  for test in "${tests[@]}"; do
    status=missing
    [ -e "$work/results/$(file_of "$test")" ] && read -r status secs <"$work/results/$(file_of "$test")"
    case "$status" in
      passed) passed+=("$test") ;;
      skipped) skipped+=("$test") ;;
      *) failed+=("$test($status)") ;;
    esac
  done
  echo
  echo "librdkafka $LIBRDKAFKA_VERSION test suite against Sluice: ${#tests[@]} tests in $((SECONDS - started))s"
  for test in "${failed[@]}"; do
    log="$work/logs/$(file_of "${test%%(*}").log"
    echo "--- $test: $log"
    # librdkafka's failure lines: '### Test "NAME (sub-test)" failed at FILE:LINE:FUNC() ...: ###'
    # then the message; fatal client errors; what bin/kafka-topics.sh (sluice topics) printed.
    sed 's/\x1b\[[0-9;]*m//g' "$log" 2>/dev/null |
      awk '/^### Test .* failed at/ { print; getline; print; next } /FATAL|TXNERR|^error: / { print }' |
      grep -av -E '<MAIN>|thread\(s\) still active|test\(s\) failed, see previous' |
      sed -E 's/ at (Mon|Tue|Wed|Thu|Fri|Sat|Sun) [A-Z][a-z]{2} +[0-9]+ [0-9:]+ [0-9]+: ###$/ ###/' |
      awk '!seen[$0]++' | head -8 | cut -c1-400
  done
  [ ${#skipped[@]} -eq 0 ] || echo "skipped (ran no test case): ${skipped[*]}"
  [ ${#failed[@]} -eq 0 ] || echo "failed: ${failed[*]}"
  # Keep the logs of a failed run (or when asked to).
  [ ${#failed[@]} -eq 0 ] || SLUICE_RDKAFKA_KEEP=1
  [ -z "${SLUICE_RDKAFKA_KEEP:-}" ] || echo "logs: $work/logs, node logs: $work/sluice-*.log"
  echo "librdkafka: ${#passed[@]} passed, ${#failed[@]} failed, ${#skipped[@]} skipped"
  [ ${#failed[@]} -eq 0 ]
}

# The test runs going on (background jobs that are not nodes).
running() { jobs -pr | grep -cvxF -e none "${node_pids[@]/#/-e}" || true; }

stop_nodes() {
  local scenario pid
  for scenario in "${!node_pids[@]}"; do
    pid=${node_pids[$scenario]}
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    unset "node_pids[$scenario]"
  done
}

cleanup() {
  local pids f
  pids=$(jobs -pr | grep -vxF -e none "${node_pids[@]/#/-e}" || true)
  [ -z "$pids" ] || kill $pids 2>/dev/null || true
  if [ -n "$work" ]; then
    for f in "$work"/pids/*; do [ -e "$f" ] && kill "$(cat "$f")" 2>/dev/null || true; done
  fi
  stop_nodes
  [ -n "${SLUICE_RDKAFKA_KEEP:-}" ] || rm -rf "$work"
}

# Starts a node for one of librdkafka's scenarios (tests/scenarios/*.json: 4 partitions a topic,
# topics auto-created except in noautocreate) and writes the test-runner's test.conf for it:
# $work/test-SCENARIO.conf (librdkafka's tests/test.conf, by RDKAFKA_TEST_CONF).
start_node() {
  local scenario=$1 autocreate=true addr=""
  [ "$scenario" = noautocreate ] && autocreate=false
  # group.initial.rebalance.delay.ms stays at Kafka's 3000, as in librdkafka's test cluster:
  # 0113 counts rebalance callbacks and expects consumers subscribing together to join in one.
  "$SLUICE_BIN" start --config /nonexistent \
    --override listeners=PLAINTEXT://127.0.0.1:0 \
    --override "log.dirs=$work/data-$scenario" \
    --override num.partitions=4 \
    --override "auto.create.topics.enable=$autocreate" \
    --override connect.enable=false \
    --override ksql.enable=false \
    >"$work/sluice-$scenario.log" 2>&1 &
  node_pids[$scenario]=$!
  for _ in $(seq 300); do
    addr=$(sed -n 's/^Sluice listening on PLAINTEXT:\/\/\([^ ]*\).*/\1/p' "$work/sluice-$scenario.log" | head -1)
    [ -n "$addr" ] && break
    kill -0 "${node_pids[$scenario]}" 2>/dev/null || break
    sleep 0.2
  done
  if [ -z "$addr" ]; then
    tail -20 "$work/sluice-$scenario.log" >&2
    echo "the Sluice node did not start" >&2
    exit 2
  fi
  # test.timeout.multiplier: the suite's timeouts are tuned for a broker on another machine
  # with the client alone on its cores; here a debug build shares 2 cores with the clients.
  cat >"$work/test-$scenario.conf" <<CONF
bootstrap.servers=$addr
test.timeout.multiplier=${SLUICE_RDKAFKA_TIMEOUT_MULTIPLIER:-2}
CONF
  echo "Sluice node for scenario $scenario on $addr"
}

# Runs one test number in its own test-runner process, in librdkafka's tests directory:
# broker tests only (-L), the number's entries one after another (-p1), full mode. CI is unset so
# that the runner behaves the same in CI as on a desk (CI=true raises its concurrency and timeouts).
# KAFKA_PATH and BROKERS are for the tests that run Kafka's kafka-topics.sh.
run_one() {
  local test=$1 num=${1:0:4} scenario kafka_version subtest file log start=$SECONDS rc=0 secs status rows
  scenario=$(scenario_of "$test")
  kafka_version=$(kafka_version_of "$test")
  subtest=$(subtest_of "$test")
  file=$(file_of "$test")
  log="$work/logs/$file.log"
  (
    cd "$src/tests"
    exec env -u CI TESTS="$num" TEST_KAFKA_VERSION="$kafka_version" SUBTESTS="${subtest:-${SUBTESTS:-}}" \
      RDKAFKA_TEST_CONF="$work/test-$scenario.conf" KAFKA_PATH="$here" \
      BROKERS="$(sed -n 's/^bootstrap.servers=//p' "$work/test-$scenario.conf")" \
      LD_LIBRARY_PATH="../src:../src-cpp" \
      timeout -k 10 "${SLUICE_RDKAFKA_TEST_TIMEOUT:-1200}" ./test-runner -L -p1 -s "$scenario"
  ) >"$log" 2>&1 &
  # timeout's pid, for cleanup to stop (timeout passes the signal on to the test-runner).
  echo $! >"$work/pids/$file"
  wait $! || rc=$?
  rm -f "$work/pids/$file"
  secs=$((SECONDS - start))
  # The runner's closing table has a row per entry: | 0045_subscribe_update | PASSED | 1.2s |
  rows=$(sed 's/\x1b\[[0-9;]*m//g' "$log" |
    awk -F'|' -v n="$num" '$2 ~ "^ *"n"_" { gsub(/ /, "", $3); print $3 }' | sort -u | tr '\n' ' ')
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    status=timeout
  elif [ "$rc" != 0 ] || [[ "$rows" == *FAILED* ]]; then
    status=failed
  elif [[ "$rows" == *PASSED* ]]; then
    status=passed
  else
    status=skipped # every entry skipped itself (needs SSL, SASL, ...) or none ran
  fi
  echo "$status $secs" >"$work/results/$file"
  printf '%-20s %-8s %4ss\n' "$test" "$status" "$secs"
}

# One line, so that bash has read it all before it runs (the file may change meanwhile).
main "$@"; exit
