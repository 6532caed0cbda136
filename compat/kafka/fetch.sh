#!/usr/bin/env bash
# Reference Apache Kafka (from Maven Central) for compatibility checks against Sluice.
#
# Nothing downloaded goes into the repository: the jars land in
#   ${SLUICE_KAFKA_CACHE:-$HOME/.cache/sluice-kafka}/<version>/libs
#
# Usage:
#   fetch.sh [fetch]                 copy Kafka's jars into the cache (skipped if already there);
#                                    prints the libs directory
#   fetch.sh libs                    same as fetch (prints the libs directory)
#   fetch.sh classpath               prints a java -cp value for the jars
#   fetch.sh start-broker DIR PORT   single-node KRaft broker+controller on 127.0.0.1:PORT (0: a
#                                    free port), controller on CONTROLLER_PORT (default PORT+1), data and
#                                    logs under DIR (created; reused if already formatted),
#                                    runs in the background; waits until it answers, then
#                                    prints the bootstrap address (127.0.0.1:PORT)
#   fetch.sh stop-broker DIR         stops the broker started with that DIR
#   fetch.sh tool NAME [ARGS...]     runs a Kafka command-line tool by its main class, e.g.
#                                    fetch.sh tool kafka-topics --bootstrap-server 127.0.0.1:9092 --list
#                                    NAME is a script name (kafka-topics, kafka-configs, ...; see
#                                    `fetch.sh tools`) or a fully qualified main class
#   fetch.sh tools                   lists the tool names and the classes they resolve to
#   fetch.sh java FILE.java [ARGS...]  runs a single-file Java program against Kafka's jars
#                                    (e.g. compat/kafka/ConfigProbe.java)
#
# Environment:
#   KAFKA_VERSION       Kafka version (default: the kafka.version in pom.xml)
#   SLUICE_KAFKA_CACHE  cache root (default: $HOME/.cache/sluice-kafka)
#   CONTROLLER_PORT     controller listener port for start-broker (default: PORT+1)
#   BROKER_EXTRA_PROPS  extra lines appended to server.properties by start-broker
#   KAFKA_HEAP_OPTS     broker JVM heap (default: -Xmx1g -Xms256m)
#   KAFKA_TOOL_LOG_LEVEL  log level of the tools (default: WARN, to stderr)
#   JAVA                java binary (default: java on PATH; Kafka 4.x needs Java 17+)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
POM="$HERE/pom.xml"
if [[ -z "${KAFKA_VERSION:-}" ]]; then
  KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$POM" | head -1)"
fi
CACHE_ROOT="${SLUICE_KAFKA_CACHE:-$HOME/.cache/sluice-kafka}"
VDIR="$CACHE_ROOT/$KAFKA_VERSION"
LIBS="$VDIR/libs"
JAVA="${JAVA:-java}"

die() { echo "fetch.sh: $*" >&2; exit 1; }

fetch() {
  if [[ -f "$VDIR/.complete" && -d "$LIBS" ]]; then
    return 0
  fi
  command -v mvn >/dev/null || die "mvn not found"
  mkdir -p "$VDIR"
  local tmp="$VDIR/libs.tmp.$$"
  rm -rf "$tmp"
  echo "fetch.sh: fetching Kafka $KAFKA_VERSION jars into $LIBS" >&2
  (cd "$VDIR" && mvn -q -B -Dstyle.color=never -f "$POM" -Dkafka.version="$KAFKA_VERSION" \
      dependency:copy-dependencies -DoutputDirectory="$tmp" > "$VDIR/mvn.log" 2>&1) \
    || { cat "$VDIR/mvn.log" >&2; rm -rf "$tmp"; die "mvn dependency:copy-dependencies failed"; }
  rm -rf "$LIBS"
  mv "$tmp" "$LIBS"
  # Index of the classes in the jars, used to find the tools' main classes.
  : > "$VDIR/classes.txt.tmp"
  for j in "$LIBS"/*.jar; do
    unzip -Z1 "$j" 2>/dev/null | sed -n 's:\.class$::p' | tr / . >> "$VDIR/classes.txt.tmp"
  done
  mv "$VDIR/classes.txt.tmp" "$VDIR/classes.txt"
  touch "$VDIR/.complete"
}

tool_log_config() {
  local f="$VDIR/tools-log4j2.properties"
  if [[ ! -f "$f" ]]; then
    cat > "$f" <<'EOF'
status = error
appender.err.type = Console
appender.err.name = STDERR
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = ${env:KAFKA_TOOL_LOG_LEVEL:-WARN}
rootLogger.appenderRef.err.ref = STDERR
EOF
  fi
  echo "$f"
}

# Candidate main classes per tool name, newest location first (Kafka moved most
# tools from the Scala `kafka.*` packages to `org.apache.kafka.tools.*` in 3.x/4.x).
tool_candidates() {
  case "$1" in
    kafka-topics) echo org.apache.kafka.tools.TopicCommand kafka.admin.TopicCommand ;;
    kafka-configs) echo org.apache.kafka.tools.ConfigCommand kafka.admin.ConfigCommand ;;
    kafka-console-producer) echo org.apache.kafka.tools.ConsoleProducer kafka.tools.ConsoleProducer ;;
    kafka-console-consumer) echo org.apache.kafka.tools.consumer.ConsoleConsumer kafka.tools.ConsoleConsumer ;;
    kafka-console-share-consumer) echo org.apache.kafka.tools.consumer.ConsoleShareConsumer ;;
    kafka-consumer-groups) echo org.apache.kafka.tools.consumer.group.ConsumerGroupCommand kafka.admin.ConsumerGroupCommand ;;
    kafka-share-groups) echo org.apache.kafka.tools.consumer.group.ShareGroupCommand ;;
    kafka-streams-groups) echo org.apache.kafka.tools.streams.StreamsGroupCommand ;;
    kafka-get-offsets) echo org.apache.kafka.tools.GetOffsetShell kafka.tools.GetOffsetShell ;;
    kafka-delete-records) echo org.apache.kafka.tools.DeleteRecordsCommand kafka.admin.DeleteRecordsCommand ;;
    kafka-dump-log) echo org.apache.kafka.tools.DumpLogSegments kafka.tools.DumpLogSegments ;;
    kafka-storage) echo kafka.tools.StorageTool org.apache.kafka.tools.StorageTool ;;
    kafka-broker-api-versions) echo org.apache.kafka.tools.BrokerApiVersionsCommand kafka.admin.BrokerApiVersionsCommand ;;
    kafka-metadata-quorum) echo org.apache.kafka.tools.MetadataQuorumCommand ;;
    kafka-metadata-shell) echo org.apache.kafka.shell.MetadataShell ;;
    kafka-features) echo org.apache.kafka.tools.FeatureCommand kafka.admin.FeatureCommand ;;
    kafka-acls) echo org.apache.kafka.tools.AclCommand kafka.admin.AclCommand ;;
    kafka-transactions) echo org.apache.kafka.tools.TransactionsCommand ;;
    kafka-leader-election) echo org.apache.kafka.tools.LeaderElectionCommand kafka.admin.LeaderElectionCommand ;;
    kafka-reassign-partitions) echo org.apache.kafka.tools.reassign.ReassignPartitionsCommand kafka.admin.ReassignPartitionsCommand ;;
    kafka-log-dirs) echo org.apache.kafka.tools.LogDirsCommand kafka.admin.LogDirsCommand ;;
    kafka-producer-perf-test) echo org.apache.kafka.tools.ProducerPerformance ;;
    kafka-consumer-perf-test) echo org.apache.kafka.tools.ConsumerPerformance kafka.tools.ConsumerPerformance ;;
    kafka-verifiable-producer) echo org.apache.kafka.tools.VerifiableProducer ;;
    kafka-verifiable-consumer) echo org.apache.kafka.tools.VerifiableConsumer ;;
    kafka-e2e-latency) echo org.apache.kafka.tools.EndToEndLatency kafka.tools.EndToEndLatency ;;
    kafka-client-metrics) echo org.apache.kafka.tools.ClientMetricsCommand ;;
    kafka-groups) echo org.apache.kafka.tools.GroupsCommand ;;
    kafka-delegation-tokens) echo org.apache.kafka.tools.DelegationTokenCommand ;;
    kafka-streams-application-reset) echo org.apache.kafka.tools.StreamsResetter ;;
    kafka-cluster) echo org.apache.kafka.tools.ClusterTool ;;
    kafka-replica-verification) echo org.apache.kafka.tools.ReplicaVerificationTool ;;
    kafka-jmx) echo org.apache.kafka.tools.JmxTool ;;
    connect-distributed) echo org.apache.kafka.connect.cli.ConnectDistributed ;;
    connect-standalone) echo org.apache.kafka.connect.cli.ConnectStandalone ;;
    connect-mirror-maker) echo org.apache.kafka.connect.mirror.MirrorMaker ;;
    kafka-server) echo kafka.Kafka ;;
    *) return 1 ;;
  esac
}
TOOL_NAMES="kafka-topics kafka-configs kafka-console-producer kafka-console-consumer
kafka-console-share-consumer kafka-consumer-groups kafka-share-groups kafka-streams-groups
kafka-get-offsets kafka-delete-records kafka-dump-log kafka-storage kafka-broker-api-versions
kafka-metadata-quorum kafka-metadata-shell kafka-features kafka-acls kafka-transactions
kafka-leader-election kafka-reassign-partitions kafka-log-dirs kafka-producer-perf-test
kafka-consumer-perf-test kafka-verifiable-producer kafka-verifiable-consumer kafka-e2e-latency
kafka-client-metrics kafka-groups kafka-delegation-tokens kafka-streams-application-reset
kafka-cluster kafka-replica-verification kafka-jmx connect-distributed connect-standalone
connect-mirror-maker kafka-server"

has_class() { grep -qxF "$1" "$VDIR/classes.txt"; }

resolve_tool() {
  local name="${1%.sh}" c
  if has_class "$name"; then echo "$name"; return 0; fi
  local cands
  cands="$(tool_candidates "$name")" || die "unknown tool '$name' (see: fetch.sh tools; or pass a main class)"
  for c in $cands; do
    if has_class "$c"; then echo "$c"; return 0; fi
  done
  die "no main class for '$name' in Kafka $KAFKA_VERSION (tried: $cands)"
}

run_tool() {
  local name="$1"; shift
  local cls
  cls="$(resolve_tool "$name")"
  exec "$JAVA" ${KAFKA_TOOL_OPTS:-} -Xmx512m \
    -Dlog4j2.configurationFile="$(tool_log_config)" \
    -cp "$LIBS/*" "$cls" "$@"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A free port whose successor (the controller's) is free too.
free_port_pair() {
  local p _
  for _ in $(seq 20); do
    p=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
    if [[ "$p" -lt 65535 ]] && ! port_open "$((p + 1))"; then
      echo "$p"
      return 0
    fi
  done
  return 1
}

start_broker() {
  [[ $# -eq 2 ]] || die "usage: fetch.sh start-broker DIR PORT"
  local dir="$1" port="$2"
  [[ "$port" =~ ^[0-9]+$ ]] || die "PORT must be a number"
  if [[ "$port" == 0 && -z "${CONTROLLER_PORT:-}" ]]; then
    port="$(free_port_pair)" || die "no free pair of ports for the broker and its controller"
  fi
  local cport="${CONTROLLER_PORT:-$((port + 1))}"
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  local props="$dir/server.properties" data="$dir/data" logs="$dir/logs" pidf="$dir/broker.pid"

  if [[ -f "$pidf" ]] && kill -0 "$(cat "$pidf")" 2>/dev/null; then
    echo "fetch.sh: broker already running (pid $(cat "$pidf"))" >&2
    echo "127.0.0.1:$port"
    return 0
  fi
  port_open "$port" && die "port $port is already in use"
  port_open "$cport" && die "controller port $cport is already in use (set CONTROLLER_PORT)"

  mkdir -p "$data" "$logs"
  cat > "$props" <<EOF
# Single-node KRaft broker+controller written by compat/kafka/fetch.sh.
# Only what a single node needs; every topic-level default is Kafka's own.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$data
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
EOF
  if [[ -n "${BROKER_EXTRA_PROPS:-}" ]]; then
    printf '%s\n' "$BROKER_EXTRA_PROPS" >> "$props"
  fi
  cat > "$dir/log4j2.properties" <<EOF
status = error
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = $logs/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.apache.name = org.apache.kafka
logger.apache.level = INFO
EOF

  local storage
  storage="$(resolve_tool kafka-storage)"
  if [[ ! -f "$data/meta.properties" ]]; then
    local cid
    cid="$("$JAVA" -Dlog4j2.configurationFile="$(tool_log_config)" -cp "$LIBS/*" "$storage" random-uuid | tail -1)"
    "$JAVA" -Dlog4j2.configurationFile="$(tool_log_config)" -cp "$LIBS/*" "$storage" \
      format -t "$cid" -c "$props" > "$logs/format.log" 2>&1 \
      || { cat "$logs/format.log" >&2; die "storage format failed"; }
  fi

  # setsid: the broker outlives this script and the shell that ran it.
  setsid "$JAVA" ${KAFKA_HEAP_OPTS:--Xmx1g -Xms256m} -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$dir/log4j2.properties" -Dkafka.logs.dir="$logs" \
    -cp "$LIBS/*" kafka.Kafka "$props" > "$logs/stdout.log" 2>&1 < /dev/null &
  local pid=$!
  echo "$pid" > "$pidf"

  local i
  for ((i = 0; i < 240; i++)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 40 "$logs/stdout.log" "$logs/server.log" >&2 2>/dev/null || true
      rm -f "$pidf"
      die "broker exited during startup (logs in $logs)"
    fi
    if port_open "$port" && grep -q 'Kafka Server started' "$logs/server.log" 2>/dev/null; then
      echo "127.0.0.1:$port"
      return 0
    fi
    sleep 0.5
  done
  die "broker did not answer on 127.0.0.1:$port within 120 s (pid $pid, logs in $logs)"
}

stop_broker() {
  [[ $# -eq 1 ]] || die "usage: fetch.sh stop-broker DIR"
  local pidf="$1/broker.pid" pid
  [[ -f "$pidf" ]] || die "no broker.pid in $1"
  pid="$(cat "$pidf")"
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    local i
    for ((i = 0; i < 60; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.5
    done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  fi
  rm -f "$pidf"
}

cmd="${1:-fetch}"
[[ $# -gt 0 ]] && shift
case "$cmd" in
  fetch|libs) fetch; echo "$LIBS" ;;
  classpath) fetch; echo "$LIBS/*" ;;
  start-broker) fetch; start_broker "$@" ;;
  stop-broker) stop_broker "$@" ;;
  tool) fetch; [[ $# -ge 1 ]] || die "usage: fetch.sh tool NAME [ARGS...]"; run_tool "$@" ;;
  java)
    fetch; [[ $# -ge 1 ]] || die "usage: fetch.sh java FILE.java [ARGS...]"
    exec "$JAVA" -Xmx512m -Dlog4j2.configurationFile="$(tool_log_config)" -cp "$LIBS/*" "$@" ;;
  tools)
    fetch
    for n in $TOOL_NAMES; do
      printf '%-34s %s\n' "$n" "$( (resolve_tool "$n") 2>/dev/null || echo '(not in this version)')"
    done ;;
  -h|--help|help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' ;;
  *) die "unknown command '$cmd' (try: fetch.sh help)" ;;
esac
