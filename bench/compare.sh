#!/usr/bin/env bash
# bench/compare.sh: mspo-spoc against DuckDB on the same JSON-to-Parquet
# work, and against curl on a throttled download. Run from anywhere in a
# checkout:
#
#   bench/compare.sh            306,000 records (about 196 MB of JSON)
#   bench/compare.sh -large     3,060,000 records as well (about 2 GB)
#   bench/compare.sh -runs 5    median of 5 runs instead of 3
#   bench/compare.sh -download-only   only the throttled download
#   bench/compare.sh -throttle 2      serve the download at 2 MB/s, not 20
#
# It builds the job and the fake upstream, generates a body and its next
# day with the project's generator, installs DuckDB from npm
# (@duckdb/node-api) into bench/.work (ignored by git), and prints, from
# /usr/bin/time -v, the median wall time, CPU time (user+sys), peak RSS
# and output size of:
#   - DuckDB's typed query (bench/duckdb.mjs typed), the baseline;
#   - DuckDB with the job's exact conversion rules (306,000 only);
#   - the job's core work, with the archive, change detection and the
#     unchanged-skip off (306,000 only);
#   - the job as it runs every day, every default on, publishing day 2
#     against a day 1 published just before (not measured);
#   - the same day 2 served gzip-compressed over loopback, as the upstream
#     may send it: its archive is the received stream (306,000 only);
# with the ratios to the baseline and the project's targets (each met or
# MISSED, from this one run, with the machine's load before and after), and checks
# that the job's snapshot and DuckDB's exact-rules output hold the same
# rows. Then it serves the body at 20 MB/s on loopback and times the job
# against `curl -o /dev/null` of the same URL.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=3
sizes=(306000)
throttle=$((20 * 1000 * 1000))
duckdb_version=1.5.6-r.1
while [ $# -gt 0 ]; do
  case "$1" in
    -large) sizes+=(3060000) ;;
    -runs) runs="$2"; shift ;;
    -no-throttle) throttle=0 ;;
    -throttle) throttle=$(awk -v mb="$2" 'BEGIN { printf "%d", mb * 1000 * 1000 }'); shift ;;
    -download-only) sizes=() ;;
    *) echo "usage: $0 [-large] [-runs N] [-throttle MB_PER_S | -no-throttle] [-download-only]" >&2; exit 2 ;;
  esac
  shift
done

work=bench/.work
mkdir -p "$work"
export PATH="$PATH:/usr/local/go/bin"

need() { command -v "$1" >/dev/null || { echo "compare.sh: $1 is required ($2)" >&2; exit 1; }; }
if [ ! -x /usr/bin/time ]; then
  echo "installing GNU time" >&2
  apt-get update -qq && apt-get install -y -qq time >/dev/null
fi
need go "Go 1.26"
need node "Node.js 20 or later, for DuckDB"
need npm "for DuckDB"
need curl "for the download measurement"

echo "building the job and the fake upstream (the container image's flags)" >&2
CGO_ENABLED=0 go build -trimpath -o "$work/job" ./cmd/job
CGO_ENABLED=0 go build -trimpath -o "$work/fakespoc" ./cmd/fakespoc

if [ ! -d "$work/duckdb/node_modules/@duckdb/node-api" ]; then
  echo "installing @duckdb/node-api@$duckdb_version into $work/duckdb" >&2
  mkdir -p "$work/duckdb"
  (cd "$work/duckdb" && npm install --silent --no-audit --no-fund "@duckdb/node-api@$duckdb_version" >/dev/null)
fi
cp bench/duckdb.mjs "$work/duckdb/duckdb.mjs"

# measure LABEL CMD...: runs CMD under /usr/bin/time -v and appends
# "label wall_s cpu_s rss_kb" to $work/times.
measure() {
  local label=$1
  shift
  /usr/bin/time -v -o "$work/time.txt" "$@" >"$work/out.txt" 2>&1 || {
    echo "compare.sh: $label failed:" >&2
    tail -20 "$work/out.txt" >&2
    exit 1
  }
  awk -v label="$label" '
    /Elapsed \(wall clock\)/ { n = split($NF, p, ":"); wall = (n == 3) ? p[1]*3600 + p[2]*60 + p[3] : p[1]*60 + p[2] }
    /User time/ { user = $NF }
    /System time/ { sys = $NF }
    /Maximum resident set size/ { rss = $NF }
    END { printf "%s %.2f %.2f %d\n", label, wall, user + sys, rss }
  ' "$work/time.txt" >>"$work/times"
}

# median LABEL FIELD: the median of column FIELD (2 wall, 3 cpu, 4 rss).
median() {
  awk -v label="$1" -v f="$2" '$1 == label { print $f }' "$work/times" | sort -g |
    awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.0f MiB", k / 1024 }'; }
mb() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1e6 }'; }

# start_gzip_server BODY: serves BODY gzip-compressed on loopback at
# $gzip_url, compressed once before the first answer.
start_gzip_server() {
  local port=$((20000 + RANDOM % 20000))
  gzip_url="http://127.0.0.1:$port/api/spoc/get-spoc-list-public"
  "$work/fakespoc" -addr "127.0.0.1:$port" -body "$1" -gzip 2>"$work/fakespoc-gzip.log" &
  gzip_server=$!
  for _ in $(seq 300); do grep -q serving "$work/fakespoc-gzip.log" && break; sleep 0.2; done
  curl -sS --fail -H 'Accept-Encoding: gzip' -o /dev/null "$gzip_url" # the compression, not measured
}
stop_gzip_server() { kill "$gzip_server" 2>/dev/null || true; wait "$gzip_server" 2>/dev/null || true; }

verdict() { # verdict VALUE OP LIMIT
  if awk -v v="$1" -v l="$3" "BEGIN { exit !(v $2 l) }"; then echo "met"; else echo "MISSED"; fi
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
: >"$work/times"
declare -A default_rss default_wall
core_env=(SPOC_ARCHIVE_RAW=false SPOC_DETECT_CHANGES=false SPOC_SKIP_IF_UNCHANGED=false)
for records in "${sizes[@]+"${sizes[@]}"}"; do
  body="$work/body-$records.json"
  day2="$work/body-$records-day2.json"
  # The job refuses a body of more than SPOC_MAX_RECORDS (2,000,000 by
  # default): the large bodies are measured with room for their next day.
  export SPOC_MAX_RECORDS=$((records > 1300000 ? records * 3 / 2 : 2000000))
  if [ ! -s "$body" ] || [ ! -s "$day2" ]; then
    echo "generating $records records into $body, and its next day into $day2" >&2
    "$work/fakespoc" -records "$records" -o "$body"
    # The next day: 1 in 306 plots gone, 1 in 383 with another status,
    # 1 in 1020 with another area, and 0.5% new plots (at 306,000: 1,000
    # removed, 1,500 added, about 1,100 changed).
    "$work/fakespoc" -records "$records" -o "$day2" -remove-every 306 -status-every 383 -area-every 1020 -add $((records / 204))
  fi
  bytes=$(stat -c %s "$body")
  echo "== $records records, $(mb "$bytes") of JSON; median of $runs runs" >&2
  # The core work only at 306,000 records; at every size the configuration
  # that runs every day (every default on) and DuckDB's typed query.
  for run in $(seq "$runs"); do
    # Alternate the tools so that a slow spell of a shared machine hits all.
    rm -f "$work/duck-$records.parquet"
    measure "duckdb-$records" node "$work/duckdb/duckdb.mjs" typed "$body" "$work/duck-$records.parquet"
    if [ "$records" = 306000 ]; then
      rm -rf "$work/out-core"
      measure "core-$records" env SPOC_URL="$body" SPOC_OUTPUT="$work/out-core" SPOC_PREFIX=bench "${core_env[@]}" SPOC_LOG_FORMAT=json "$work/job"
      rm -f "$work/duck-exact-$records.parquet"
      measure "exact-$records" node "$work/duckdb/duckdb.mjs" copy "$body" "$work/duck-exact-$records.parquet"
    fi
    # Day 2 against a published day 1, with every default: archive,
    # change detection, unchanged-skip.
    rm -rf "$work/out-default"
    SPOC_URL="$body" SPOC_OUTPUT="$work/out-default" SPOC_PREFIX=bench SPOC_DATE=20261125 SPOC_LOG_FORMAT=json "$work/job" >/dev/null 2>&1 || {
      echo "compare.sh: publishing day 1 failed" >&2
      exit 1
    }
    measure "default-$records" env SPOC_URL="$day2" SPOC_OUTPUT="$work/out-default" SPOC_PREFIX=bench SPOC_DATE=20261126 SPOC_LOG_FORMAT=json "$work/job"
    if [ "$records" = 306000 ]; then
      # The same day 2 from a server that sends it gzip-compressed (once,
      # cached): the archive is then the received stream.
      start_gzip_server "$day2"
      rm -rf "$work/out-default/bench/20261126"
      measure "gzip-$records" env SPOC_URL="$gzip_url" SPOC_OUTPUT="$work/out-default" SPOC_PREFIX=bench SPOC_DATE=20261126 SPOC_LOG_FORMAT=json "$work/job"
      stop_gzip_server
    fi
    echo "  run $run: $(grep -c . "$work/times") measurements so far; last: $(tail -1 "$work/times")" >&2
  done
  dw=$(median "duckdb-$records" 2) dc=$(median "duckdb-$records" 3) dr=$(median "duckdb-$records" 4)
  fw=$(median "default-$records" 2) fc=$(median "default-$records" 3) fr=$(median "default-$records" 4)
  default_rss[$records]=$fr default_wall[$records]=$fw
  duck_bytes=$(stat -c %s "$work/duck-$records.parquet")
  echo
  echo "### $records records ($(mb "$bytes") of JSON), median of $runs runs"
  echo
  echo "| | wall | CPU (user+sys) | peak RSS | Parquet | wall / DuckDB typed | CPU / DuckDB typed |"
  echo "| --- | --- | --- | --- | --- | --- | --- |"
  echo "| DuckDB, typed query | ${dw} s | ${dc} s | $(mib "$dr") | $(mb "$duck_bytes") | 1 | 1 |"
  if [ "$records" = 306000 ]; then
    ew=$(median "exact-$records" 2) ec=$(median "exact-$records" 3) er=$(median "exact-$records" 4)
    cw=$(median "core-$records" 2) cc=$(median "core-$records" 3) cr=$(median "core-$records" 4)
    core_parquet=$(find "$work/out-core" -name spoc-list-public.parquet)
    core_bytes=$(stat -c %s "$core_parquet")
    exact_bytes=$(stat -c %s "$work/duck-exact-$records.parquet")
    echo "| DuckDB, the job's exact rules (all VARCHAR, TRY_CAST(trim(...))) | ${ew} s | ${ec} s | $(mib "$er") | $(mb "$exact_bytes") | $(ratio "$ew" "$dw") | $(ratio "$ec" "$dc") |"
    echo "| mspo-spoc, core (archive, changes, unchanged-skip off) | ${cw} s | ${cc} s | $(mib "$cr") | $(mb "$core_bytes") | $(ratio "$cw" "$dw") | $(ratio "$cc" "$dc") |"
  fi
  default_parquet=$(find "$work/out-default" -path '*20261126*' -name spoc-list-public.parquet)
  echo "| mspo-spoc, every default, day 2 against a published day 1 | ${fw} s | ${fc} s | $(mib "$fr") | $(mb "$(stat -c %s "$default_parquet")") | $(ratio "$fw" "$dw") | $(ratio "$fc" "$dc") |"
  if [ "$records" = 306000 ]; then
    gw=$(median "gzip-$records" 2) gc=$(median "gzip-$records" 3) gr=$(median "gzip-$records" 4)
    echo "| mspo-spoc, the same, the body served gzip (archived as received) | ${gw} s | ${gc} s | $(mib "$gr") | | $(ratio "$gw" "$dw") | $(ratio "$gc" "$dc") |"
  fi
  echo
  changes=$(grep -o '"message":"changes since the previous snapshot"[^}]*' "$work/out.txt" | grep -o '"added":[0-9]*,"removed":[0-9]*,"changed":[0-9]*' || true)
  echo "Day 2 against day 1: ${changes:-(no change summary found)}."
  if [ "$records" = 306000 ]; then
    same=$(node "$work/duckdb/duckdb.mjs" same "$core_parquet" "$work/duck-exact-$records.parquet") || {
      echo "compare.sh: the job's Parquet and DuckDB's exact-rules Parquet differ: $same" >&2
      exit 1
    }
    echo "The job's snapshot and DuckDB's exact-rules output hold the same rows: $same."
    echo
    echo "Targets, against the typed query:"
    echo "- core CPU at most 0.35x: $(verdict "$(awk -v a="$cc" -v b="$dc" 'BEGIN{print a/b}')" '<=' 0.35) ($(ratio "$cc" "$dc"))"
    echo "- core wall at most 0.4x: $(verdict "$(awk -v a="$cw" -v b="$dw" 'BEGIN{print a/b}')" '<=' 0.4) ($(ratio "$cw" "$dw"))"
    echo "- default (day 2) CPU at most 0.6x: $(verdict "$(awk -v a="$fc" -v b="$dc" 'BEGIN{print a/b}')" '<=' 0.6) ($(ratio "$fc" "$dc"))"
    echo "- default (day 2) wall at most 0.6x: $(verdict "$(awk -v a="$fw" -v b="$dw" 'BEGIN{print a/b}')" '<=' 0.6) ($(ratio "$fw" "$dw"))"
    echo "- peak RSS at most 256 MiB, core and default: $(verdict "$(awk -v a="$cr" -v b="$fr" 'BEGIN{print (a > b ? a : b)}')" '<=' $((256 * 1024))) ($(mib "$cr"), $(mib "$fr"))"
    echo "- Parquet no larger than DuckDB's: $(verdict "$core_bytes" '<=' "$duck_bytes") ($(ratio "$core_bytes" "$duck_bytes"))"
  fi
done
if [ -n "${default_rss[3060000]:-}" ]; then
  echo
  echo "At 3,060,000 records, every default, against 306,000:"
  echo "- peak RSS at most 400 MiB (Cloud Run's 512 MiB): $(verdict "${default_rss[3060000]}" '<=' $((400 * 1024))) ($(mib "${default_rss[3060000]}"))"
  echo "- wall at most 11x: $(verdict "$(awk -v a="${default_wall[3060000]}" -v b="${default_wall[306000]}" 'BEGIN{print a/b}')" '<=' 11) ($(ratio "${default_wall[3060000]}" "${default_wall[306000]}"))"
fi

if [ "$throttle" -gt 0 ]; then
  body="$work/body-306000.json"
  [ -s "$body" ] || "$work/fakespoc" -records 306000 -o "$body"
  port=$((20000 + RANDOM % 20000))
  url="http://127.0.0.1:$port/api/spoc/get-spoc-list-public"
  "$work/fakespoc" -addr "127.0.0.1:$port" -body "$body" -throttle "$throttle" 2>"$work/fakespoc.log" &
  server=$!
  trap 'kill $server 2>/dev/null || true' EXIT
  # Any request would start a 10-second body, so wait for the server's
  # own word that it listens.
  for _ in $(seq 300); do grep -q serving "$work/fakespoc.log" && break; sleep 0.2; done
  for run in $(seq "$runs"); do
    measure curl curl -sS --fail -o /dev/null "$url"
    rm -rf "$work/out-job"
    measure job-throttled env SPOC_URL="$url" SPOC_OUTPUT="$work/out-job" SPOC_PREFIX=bench SPOC_ARCHIVE_RAW=false SPOC_DETECT_CHANGES=false SPOC_SKIP_IF_UNCHANGED=false SPOC_LOG_FORMAT=json "$work/job"
    echo "  throttled run $run: $(tail -2 "$work/times" | tr '\n' ' ')" >&2
  done
  cw=$(median curl 2) tw=$(median job-throttled 2)
  echo
  echo "### Download at $(mb "$throttle")/s from the fake upstream on loopback, median of $runs runs"
  echo
  echo "| | curl -o /dev/null | mspo-spoc | job/curl |"
  echo "| --- | --- | --- | --- |"
  echo "| wall | ${cw} s | ${tw} s | $(ratio "$tw" "$cw") |"
  echo
  echo "- job wall at most 1.05x the plain download's: $(verdict "$(awk -v a="$tw" -v b="$cw" 'BEGIN{print a/b}')" '<=' 1.05)"
fi
echo
echo "Machine load (1, 5, 15 min): $load_before before, $(cut -d' ' -f1-3 /proc/loadavg) after; this script keeps both cores busy itself."
echo "Machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'); $(go version | cut -d' ' -f3); node $(node --version); DuckDB $duckdb_version"
