#!/usr/bin/env bash
# Sluice's own layers against Apache Kafka: the integration tests of the native client, Sluice
# Streams, the `sluice` tools and Kafka Connect workers (file connectors, distributed) that
# speak only the Kafka protocol run here against an Apache Kafka broker, with the same
# assertions they check against Sluice in `cargo test` — how a user who outgrows one node moves
# to any Kafka cluster.
#
# Usage: compat/kafka/run-layers.sh [TEST-BINARY [FILTER ...]]
#   Without arguments, the list below. Each test runs alone (--test-threads=1) on the emptied
#   broker (sluice_log::testing::reset_external_broker), as each would on a fresh node.
#
# Starts Kafka with compat/kafka/fetch.sh start-broker (jars cached in ~/.cache), sets
# SLUICE_TEST_BOOTSTRAP to it, runs the tests, stops it. CARGO_TARGET_DIR defaults to
# $HOME/.cache/sluice-target.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sluice-target}"

# A test binary of the workspace (`cargo test --workspace --test NAME`: the workspace's feature
# set, so that nothing `cargo test --workspace` built is built again), then the test names
# (substrings) that run there.
default_runs=(
  "broker client::produce_with_every_codec_then_consume_in_order client::a_client_config_map_drives_producer_and_group_consumer transactions:: idempotence::transactional_records_without_a_transactional_id_fail_the_request_as_in_kafka"
  "streams runtime::stream_threads_process_every_record_and_a_restart_goes_on_from_the_commits runtime::counts_live_in_stores_that_a_restart_restores_from_their_changelogs runtime::two_instances_join_a_stream_with_a_table_of_four_partitions runtime::records_for_closed_windows_are_dropped_and_counted runtime::a_table_regrouped_on_a_node_moves_its_rows_between_partitions runtime::two_streams_join_on_a_node_across_partitions fk_join::a_node_joins_tables_of_different_partition_counts_by_foreign_key global::a_node_loads_the_global_table_first_and_keeps_it_current"
  "tools topics_lifecycle_like_kafka_topics produce_and_consume_like_the_console_tools groups_like_kafka_consumer_groups consume_with_a_group_resumes_where_the_group_committed"
  "connect a_standalone_worker_runs_file_connectors_driven_by_sluice_connect distributed_workers_in_two_processes_hand_over_when_one_is_killed"
  "statements aggregations joins pull_queries"
  "queries a_persistent_query_goes_on_after_a_restart_without_loss_or_repeats a_pull_query_answers_at_once inserts_stream"
  "rest the_ksqldb_python_client"
)
runs=()
if [ $# -gt 0 ]; then runs=("$*"); else runs=("${default_runs[@]}"); fi

work=$(mktemp -d "${TMPDIR:-/tmp}/sluice-layers.XXXXXX")
cleanup() {
  bash "$here/fetch.sh" stop-broker "$work/kafka" >/dev/null 2>&1 || true
  [ -n "${SLUICE_LAYERS_KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Build first, so that the broker is not kept waiting on the compiler.
for run in "${runs[@]}"; do
  target=${run%% *}
  (cd "$repo" && timeout 30m nice cargo test -q --workspace --test "$target" --no-run)
done

started=$SECONDS
# As the tests' own fixtures configure their nodes.
export BROKER_EXTRA_PROPS="message.max.bytes=100000"
addr=$(nice bash "$here/fetch.sh" start-broker "$work/kafka" 0 | tail -1)
echo "Apache Kafka on $addr (started in $((SECONDS - started))s)"
export SLUICE_TEST_BOOTSTRAP="$addr"

failed=0
for run in "${runs[@]}"; do
  read -r target filters <<<"$run"
  # shellcheck disable=SC2086 # the filters are words
  if ! (cd "$repo" && timeout 20m nice cargo test -q --workspace --test "$target" -- \
    --test-threads=1 $filters); then
    failed=1
    echo "FAILED against Apache Kafka: $target $filters" >&2
  fi
done
echo "Sluice's layers against Apache Kafka: $([ $failed = 0 ] && echo passed || echo FAILED) in $((SECONDS - started))s"
[ $failed = 0 ] || { SLUICE_LAYERS_KEEP=1; echo "Kafka's logs: $work/kafka/logs" >&2; }
exit $failed
