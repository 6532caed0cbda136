#!/usr/bin/env bash
# Sluice next to Apache Kafka: the same workloads with the same clients against both servers,
# one table of Sluice ÷ Kafka ratios. Run by hand (not in CI); takes ~15-20 minutes.
#
# Usage: bench/peers.sh [--only start,produce,memory,consume,latency,streams] [--quick] [--json]
#                       [--reps N] [--records-100 N] [--records-1k N] [--latency-rate R] [--keep]
#   (bench/peers.sh --help lists every option)
#
# Workloads (each against both servers; which server goes first alternates; --reps runs each,
# default 2, the median is reported):
#   start    spawn → first ApiVersions v0 / Metadata v1 answered (10 ms polls); Kafka's storage
#            format timed apart; RSS right after start
#   produce  kafka-producer-perf-test and rdkafka_performance -P: 100 B and 1 KiB records,
#            acks=1 and acks=all, 1 and 6 partitions (fresh topic per run, replication factor 1);
#            CPU of each server process (and its busiest thread), the client and the machine
#   memory   VmRSS idle (topics created) and the peak during the produce runs (100 ms samples)
#   consume  kafka-consumer-perf-test and rdkafka_performance -C over records written before
#   latency  bench/EndToEndLatency.java at half of the lower of the two servers' peak produce
#            rates (kafka-producer-perf-test, acks=1, 100 B, 1 partition), same rate for both
#   streams  Nexmark q1 and q5 with one stream thread: Sluice Streams (`sluice bench streams
#            --bootstrap-server`) and Kafka Streams (bench/NexmarkKafkaStreams.java, over the same
#            bids), each on both brokers; events/s; --streams-guarantees exactly_once_v2 (or
#            at_least_once,exactly_once_v2) runs them under transactions, --streams-queries q5 one query
#
# Environment:
#   SLUICE_BIN       a release sluice binary (default:
#                    $HOME/.cache/sluice-target-arch/release/sluice; build it with
#                    CARGO_TARGET_DIR=$HOME/.cache/sluice-target-arch cargo build --release -p sluice-cli).
#                    The run uses a copy, so rebuilding meanwhile does not change it.
#   RDKAFKA_PERF     librdkafka's rdkafka_performance (default: built on first use into
#                    $HOME/.cache/sluice-peers from the librdkafka tree compat/librdkafka/run.sh
#                    builds in $HOME/.cache/sluice-librdkafka/librdkafka-2.12.1)
#   PEERS_TMP        parent of the run's temp dir (default /tmp); both servers' data go there
#   KAFKA_HEAP_OPTS  Kafka's heap (default fetch.sh's: -Xmx1g -Xms256m)
#
# Needs: java 17+ (Kafka's jars via compat/kafka/fetch.sh), python3 with confluent-kafka (topic
# admin only), gcc (to build rdkafka_performance once).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$HERE")"
die() { echo "peers.sh: $*" >&2; exit 2; }

for arg in "$@"; do
  case "$arg" in -h|--help) exec python3 "$HERE/peers.py" --help \
    --sluice-bin x --rdkafka-perf x --work x ;; esac
done

SLUICE_BIN="${SLUICE_BIN:-$HOME/.cache/sluice-target-arch/release/sluice}"
[[ -x "$SLUICE_BIN" ]] || die "no Sluice binary at $SLUICE_BIN (set SLUICE_BIN, or build: CARGO_TARGET_DIR=\$HOME/.cache/sluice-target-arch cargo build --release -p sluice-cli)"
# A debug build would measure the compiler's debug profile, not Sluice: refuse it. Dev-profile
# binaries have debug assertions (core's precondition checks) and overflow-check panics linked in.
case "$SLUICE_BIN" in
  */debug/*) die "$SLUICE_BIN is a debug build (target/debug); use a release build (cargo build --release -p sluice-cli)" ;;
esac
if command -v nm >/dev/null; then
  # (grep without -q reads all of nm's output: with pipefail, an early exit would fail nm.)
  if nm "$SLUICE_BIN" 2>/dev/null | grep -e 'precondition_check' -e 'panic_const_add_overflow' >/dev/null; then
    die "$SLUICE_BIN looks like a debug build (debug assertions / overflow checks are compiled in); use a release build (cargo build --release -p sluice-cli)"
  fi
fi

RDKAFKA_PERF="${RDKAFKA_PERF:-$HOME/.cache/sluice-peers/rdkafka_performance}"
if [[ ! -x "$RDKAFKA_PERF" ]]; then
  src="$HOME/.cache/sluice-librdkafka/librdkafka-2.12.1"
  [[ -f "$src/src/librdkafka.a" ]] || die "librdkafka is not built in $src (run compat/librdkafka/run.sh once, or set RDKAFKA_PERF)"
  echo "peers.sh: building rdkafka_performance from $src into $RDKAFKA_PERF" >&2
  mkdir -p "$(dirname "$RDKAFKA_PERF")"
  # The same link line as librdkafka's examples/Makefile for the static library
  # (this tree: ./configure --disable-ssl --disable-gssapi --disable-curl --enable-zstd --enable-zlib).
  (cd "$src/examples" && nice gcc -O2 -I../src rdkafka_performance.c -o "$RDKAFKA_PERF" \
      ../src/librdkafka.a -lm -lzstd -lz -ldl -lpthread -lrt) \
    || die "building rdkafka_performance failed"
fi

python3 -c 'import confluent_kafka' 2>/dev/null || die "python3 confluent-kafka is needed (topic admin)"
"$REPO/compat/kafka/fetch.sh" fetch >/dev/null

work="$(mktemp -d "${PEERS_TMP:-/tmp}/sluice-peers.XXXXXX")"
cp "$SLUICE_BIN" "$work/sluice-bin"
echo "peers.sh: work dir $work (Sluice binary copied from $SLUICE_BIN)" >&2
PEERS_SLUICE_ORIGIN="$SLUICE_BIN" exec python3 "$HERE/peers.py" --sluice-bin "$work/sluice-bin" --rdkafka-perf "$RDKAFKA_PERF" \
  --work "$work" "$@"
