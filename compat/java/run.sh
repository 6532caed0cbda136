#!/usr/bin/env bash
# Apache Kafka's own Java clients, command-line tools, Kafka Streams and Kafka Connect against a
# broker: Sluice (default) or Apache Kafka itself (the oracle: the same assertions pass there).
#
# Usage: compat/java/run.sh [--broker sluice|kafka] [-- EXTRA MAVEN ARGS, e.g. -Dtest=ToolsTest]
#
# Starts the broker (Sluice on an ephemeral port; Kafka by compat/kafka/fetch.sh start-broker on a
# free port), runs `mvn test` in this directory against it (at most 15 minutes), prints surefire's
# summary and the failing tests' messages, stops the broker. Exits non-zero if a test failed.
#
# Environment:
#   SLUICE_BIN             the sluice binary (default: $CARGO_TARGET_DIR/debug/sluice after
#                          cargo test --workspace --no-run; CARGO_TARGET_DIR defaults to
#                          $HOME/.cache/sluice-target)
#   SLUICE_JAVA_KEEP=1     keep the broker's data and logs also when every test passed
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
fetch="$repo/compat/kafka/fetch.sh"
broker=sluice
mvn_args=()

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case "$1" in
    --broker) broker="${2:-}"; shift ;;
    --broker=*) broker="${1#--broker=}" ;;
    -h | --help) usage; exit 0 ;;
    --) shift; mvn_args=("$@"); break ;;
    *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
case "$broker" in
  sluice | kafka) ;;
  *) echo "--broker must be sluice or kafka, not '$broker'" >&2; exit 2 ;;
esac

work=""
node_pid=""
kafka_dir=""
failed_run=0

stop_broker() {
  if [ -n "$node_pid" ]; then
    kill "$node_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$node_pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$node_pid" 2>/dev/null || true
    wait "$node_pid" 2>/dev/null || true
    node_pid=""
  fi
  if [ -n "$kafka_dir" ]; then
    bash "$fetch" stop-broker "$kafka_dir" >/dev/null 2>&1 || true
    kafka_dir=""
  fi
}

cleanup() {
  stop_broker
  if [ -n "$work" ]; then
    if [ "$failed_run" = 0 ] && [ -z "${SLUICE_JAVA_KEEP:-}" ]; then
      rm -rf "$work"
    else
      echo "broker data and logs: $work" >&2
    fi
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Kafka's jars (the tools run from them; fetch.sh caches them outside the repository).
bash "$fetch" fetch >/dev/null

if [ "$broker" = sluice ] && [ -z "${SLUICE_BIN:-}" ]; then
  # `cargo test --no-run` rather than `cargo build -p sluice-cli`: after the test command's
  # `cargo test --workspace` it has nothing to do, and it leaves target/debug/sluice.
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sluice-target}"
  (cd "$repo" && timeout 30m nice cargo test -q --workspace --no-run)
  SLUICE_BIN="$CARGO_TARGET_DIR/debug/sluice"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/sluice-java.XXXXXX")
started=$SECONDS
addr=""
if [ "$broker" = sluice ]; then
  SLUICE_BIN=$(realpath "$SLUICE_BIN")
  [ -x "$SLUICE_BIN" ] || { echo "no sluice binary at $SLUICE_BIN" >&2; exit 2; }
  # group.initial.rebalance.delay.ms=0 as in fetch.sh's Kafka broker; no Connect worker of its own.
  "$SLUICE_BIN" start --config /nonexistent \
    --override listeners=PLAINTEXT://127.0.0.1:0 \
    --override "log.dirs=$work/data" \
    --override connect.enable=false \
    --override ksql.enable=false \
    --override group.initial.rebalance.delay.ms=0 \
    >"$work/sluice.log" 2>&1 &
  node_pid=$!
  for _ in $(seq 300); do
    addr=$(sed -n 's/^Sluice listening on PLAINTEXT:\/\/\([^ ]*\).*/\1/p' "$work/sluice.log" | head -1)
    [ -n "$addr" ] && break
    kill -0 "$node_pid" 2>/dev/null || break
    sleep 0.2
  done
  if [ -z "$addr" ]; then
    tail -20 "$work/sluice.log" >&2
    echo "the Sluice node did not start" >&2
    failed_run=1
    exit 2
  fi
  echo "Sluice ($SLUICE_BIN) on $addr"
else
  kafka_dir="$work/kafka"
  addr=$(nice bash "$fetch" start-broker "$kafka_dir" 0 | tail -1) || { failed_run=1; exit 2; }
  echo "Apache Kafka on $addr"
fi

build_dir="$HOME/.cache/sluice-compat-java"
reports="$build_dir/surefire-reports"
rm -rf "$reports"
rc=0
(cd "$here" && timeout 15m nice mvn -q -B -Dstyle.color=never test \
  -Dbootstrap="$addr" -Dbroker.kind="$broker" -Dkafka.fetch="$fetch" -Dbuild.dir="$build_dir" \
  -Dsurefire.printSummary=false "${mvn_args[@]}") >"$work/mvn.log" 2>&1 || rc=$?
secs=$((SECONDS - started))
[ "$rc" = 124 ] && echo "mvn test did not finish within 15 minutes" >&2

if [ "$broker" = sluice ] && [ -n "$node_pid" ] && ! kill -0 "$node_pid" 2>/dev/null; then
  echo "the Sluice node died during the tests; its log's end:" >&2
  tail -30 "$work/sluice.log" >&2
fi
stop_broker

# Surefire's summary, from its XML reports: a line per test class, then each failure's message.
if ls "$reports"/TEST-*.xml >/dev/null 2>&1; then
  python3 - "$reports" <<'PY'
import glob, sys, xml.etree.ElementTree as ET
total = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
bad = []
for f in sorted(glob.glob(sys.argv[1] + "/TEST-*.xml")):
    s = ET.parse(f).getroot()
    n = {k: int(s.get(k, 0)) for k in total}
    for k in total:
        total[k] += n[k]
    print("%-44s tests %3d, failures %d, errors %d, skipped %d, %6.1fs" % (
        s.get("name").rsplit(".", 1)[-1], n["tests"], n["failures"], n["errors"], n["skipped"],
        float(s.get("time", 0))))
    for case in s.iter("testcase"):
        for kind in ("failure", "error"):
            for e in case.findall(kind):
                msg = (e.get("message") or "").strip() or (e.text or "").strip().split("\n")[0]
                # An exception's causes say more than its message (e.g. which API the node lacks).
                seen = set()
                for line in (e.text or "").splitlines():
                    if line.startswith("Caused by: ") and line not in seen and line[11:] not in msg:
                        seen.add(line)
                        msg += "\n" + line
                    if len(seen) == 3:
                        break
                lines = msg[:1500].splitlines()
                if len(lines) > 14:
                    lines = lines[:14] + ["[... %d more lines]" % (len(lines) - 14)]
                bad.append("%s.%s (%s %s):\n    %s" % (case.get("classname").rsplit(".", 1)[-1],
                           case.get("name"), kind, e.get("type", ""), "\n    ".join(lines)))
print("Tests run: %(tests)d, Failures: %(failures)d, Errors: %(errors)d, Skipped: %(skipped)d" % total)
for b in bad:
    print("--- " + b)
PY
else
  echo "no surefire reports; mvn's output:" >&2
  tail -60 "$work/mvn.log" >&2
fi
echo "$broker: ${secs}s (broker start and tests)"
if [ "$rc" != 0 ]; then
  failed_run=1
  echo "failed (mvn exit $rc); reports: $reports, mvn output: $work/mvn.log" >&2
  exit 1
fi
