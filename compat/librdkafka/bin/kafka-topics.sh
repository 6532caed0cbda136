#!/usr/bin/env bash
# Kafka's bin/kafka-topics.sh for librdkafka's test suite, which runs it through KAFKA_PATH
# (test_kafka_topics() in tests/test.c: 0045, 0052, 0077): the same flags, done by `sluice topics`.
#   kafka-topics.sh --bootstrap-server B --create --topic T --partitions N --replication-factor R --config K=V
#   kafka-topics.sh --bootstrap-server B --alter --topic T --partitions N
#   kafka-topics.sh --bootstrap-server B --delete --topic T
# The tests target Kafka 3.x, where segment.bytes could be as small as 14 bytes (0077 asks for
# 10000 to roll segments quickly); Kafka 4 requires 1 MiB and gives tests internal.segment.bytes,
# so a smaller segment.bytes is passed as that.
set -euo pipefail
: "${SLUICE_BIN:?SLUICE_BIN must name the sluice binary (run.sh sets it)}"
action="" args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --create | --alter | --delete | --list | --describe) action=${1#--} ;;
    --zookeeper) echo "kafka-topics.sh (sluice): --zookeeper is not supported" >&2; exit 2 ;;
    --config)
      config=$2
      shift
      if [[ "$config" =~ ^segment\.bytes=([0-9]+)$ ]] && [ "${BASH_REMATCH[1]}" -lt 1048576 ]; then
        config="internal.$config"
      fi
      args+=(--config "$config")
      ;;
    *) args+=("$1") ;;
  esac
  shift
done
[ -n "$action" ] || { echo "kafka-topics.sh (sluice): one of --create --alter --delete --list --describe" >&2; exit 2; }
exec "$SLUICE_BIN" topics "$action" "${args[@]}"
