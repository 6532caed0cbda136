#!/usr/bin/env bash
# Third-party client figures to compare with `sluice bench produce|consume`: kcat (librdkafka)
# producing N records of S bytes from a file and consuming them back, against a running broker.
# Usage: bench/kcat-perf.sh BOOTSTRAP TOPIC N S [extra kcat -X settings...]
set -euo pipefail
bootstrap=${1:?bootstrap}; topic=${2:?topic}; n=${3:?records}; size=${4:?record size}; shift 4
input=$(mktemp)
trap 'rm -f "$input"' EXIT
python3 -c "import sys; line = b'x' * $size + b'\n'; sys.stdout.buffer.write(line * $n)" > "$input"
start=$(date +%s.%N)
kcat -b "$bootstrap" -P -t "$topic" -X queue.buffering.max.messages=1000000 "$@" -l "$input"
mid=$(date +%s.%N)
kcat -b "$bootstrap" -C -t "$topic" -o beginning -c "$n" -q -f '' -e
end=$(date +%s.%N)
python3 - "$start" "$mid" "$end" "$n" "$size" <<'PY'
import sys
start, mid, end, n, size = map(float, sys.argv[1:])
produce, consume = mid - start, end - mid
print(f"kcat produce: {n/produce:,.0f} records/s ({n*size/1e6/produce:.1f} MB/s); "
      f"consume: {n/consume:,.0f} records/s ({n*size/1e6/consume:.1f} MB/s)")
PY
