#!/usr/bin/env bash
# The files in deploy/ are valid for the tools that read them, and agree with what the programs export:
#   haproxy   haproxy -c on deploy/haproxy.cfg, no warnings
#   prom      promtool check config / check rules / test rules (alerts on synthetic series), and every
#             series the alerts read exists on a running server's GET /metrics and HAProxy's exporter
#   systemd   systemd-analyze verify on deploy/modelpool.service, no complaints
# usage: test-deploy.sh MODELPOOL_BIN SOURCE_DIR CASE   (exit 77 when the case's tool is missing)
set -euo pipefail
trap 'echo "FAIL: test-deploy.sh line $LINENO: a command failed (status $?)" >&2' ERR
bin=$1 src=$2 case_=$3
deploy=$src/deploy
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
need() { command -v "$1" >/dev/null || { echo "skipped: $1 missing (scripts/install-deps.sh --test)"; exit 77; }; }
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# deploy/haproxy.cfg on free ports, its socket in $tmp, no privilege drop (same moves as tests/scale-out.py)
haproxy_cfg() {
  sed -e "s#/run/haproxy/modelpool.sock#$tmp/haproxy.sock#" -e 's#log /dev/log local0#log stderr format raw local0#' \
      -e "s/\b8404\b/$1/g" -e "s/\b8080\b/$(free_port)/g" -e "s/\b8090\b/$(free_port)/g" \
      -e '/^\s*\(user\|group\|chroot\) /d' "$deploy/haproxy.cfg" > "$tmp/haproxy.cfg"
}

case $case_ in
haproxy)
  need haproxy
  out=$(haproxy -c -f "$deploy/haproxy.cfg" 2>&1) || fail "haproxy -c: $out"
  if grep -q -e WARNING -e ALERT <<< "$out"; then fail "haproxy -c: $out"; fi
  echo "haproxy.cfg ok"
  ;;
prom)
  need promtool; need haproxy; need curl
  promtool check config "$deploy/prometheus.yml" > "$tmp/out" 2>&1 || fail "promtool check config: $(cat "$tmp/out")"
  promtool check rules "$deploy/alerts.yml" > "$tmp/out" 2>&1 || fail "promtool check rules: $(cat "$tmp/out")"
  (cd "$deploy" && promtool test rules alerts.test.yml) > "$tmp/out" 2>&1 || fail "promtool test rules: $(cat "$tmp/out")"
  # what the running programs export
  port=$(free_port)
  "$bin" serve --port "$port" --workers 1 2> "$tmp/serve.log" &
  pids+=($!)
  stats=$(free_port)
  haproxy_cfg "$stats"
  haproxy -db -f "$tmp/haproxy.cfg" > "$tmp/haproxy.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$port/metrics" > "$tmp/metrics" && curl -sf "http://127.0.0.1:$stats/metrics" \
      >> "$tmp/metrics" && break
    sleep 0.1
  done
  [ -s "$tmp/metrics" ] || fail "no /metrics from the server or HAProxy: $(cat "$tmp/serve.log" "$tmp/haproxy.log")"
  # the server's exposition passes Prometheus's own linter (types, histogram and summary suffixes, help)
  curl -sf "http://127.0.0.1:$port/metrics" > "$tmp/server.metrics"
  out=$(promtool check metrics < "$tmp/server.metrics" 2>&1) || fail "promtool check metrics: $out"
  # every metric{labels} selector in the alerts, checked against the exported series (name and label values)
  n=0
  while read -r sel; do
    name=${sel%%\{*}
    grep -q "^$name[{ ]" "$tmp/metrics" || fail "alerts.yml reads $name, which nothing exports"
    if [ "$sel" != "$name" ]; then
      for kv in $(tr -d '{}"' <<< "${sel#"$name"}" | tr ',' ' '); do
        [ "${kv%%=*}" = job ] && continue   # job is Prometheus's label, not the exporter's
        grep "^$name{" "$tmp/metrics" | grep -q "${kv%%=*}=\"${kv#*=}\"" || fail "no $name with $kv exported"
      done
    fi
    n=$((n + 1))
  done < <(grep -o '\b\(modelpool\|haproxy\)_[a-z_]*\({[^}]*}\)\?' "$deploy/alerts.yml" | sort -u)
  [ "$n" -ge 6 ] || fail "only $n metric selectors found in alerts.yml"
  echo "prometheus.yml, alerts.yml ok ($n selectors match exported series)"
  ;;
systemd)
  command -v systemd-analyze >/dev/null || { echo "skipped: systemd-analyze missing (no systemd here)"; exit 77; }
  # the unit as installed, pointing at this build's binary; the man page from an install into $tmp
  cmake_bin=$(command -v cmake)
  "$cmake_bin" --install "$(dirname "$bin")" --prefix "$tmp/p" > /dev/null
  sed "s#/usr/local/bin/modelpool#$tmp/p/bin/modelpool#" "$deploy/modelpool.service" > "$tmp/modelpool.service"
  grep -q "$tmp/p/bin/modelpool serve" "$tmp/modelpool.service" || fail "ExecStart no longer runs /usr/local/bin/modelpool"
  if ! MANPATH=$tmp/p/share/man: systemd-analyze verify "$tmp/modelpool.service" > "$tmp/out" 2>&1 || [ -s "$tmp/out" ]; then
    fail "systemd-analyze verify: $(cat "$tmp/out")"
  fi
  for k in DynamicUser=yes ProtectSystem=strict NoNewPrivileges=yes MemoryMax= ExecStartPost= TimeoutStopSec=; do
    grep -q "^$k" "$deploy/modelpool.service" || fail "modelpool.service lacks $k"
  done
  # systemd must wait longer than the drain before it SIGKILLs
  drain=$(grep -o 'MODELPOOL_DRAIN_S=[0-9]*' "$deploy/modelpool.service" | cut -d= -f2)
  stop=$(grep -o '^TimeoutStopSec=[0-9]*' "$deploy/modelpool.service" | cut -d= -f2)
  [ "$stop" -gt "$drain" ] || fail "TimeoutStopSec=$stop is not above the drain ($drain s)"
  score=$(systemd-analyze security --offline=yes "$tmp/modelpool.service" 2>/dev/null | grep -o 'exposure level for [^:]*: [0-9.]*' || true)
  echo "modelpool.service ok (${score:-security score unavailable})"
  ;;
*) fail "unknown case $case_" ;;
esac
