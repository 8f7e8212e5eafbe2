#!/usr/bin/env bash
# Serve a classroom: N `panel serve apps/explainer.py` processes on loopback ports, nginx in front of them with
# sticky sessions and the websocket upgrade. Runs in the foreground; Ctrl-C (or SIGTERM) stops everything.
#
#   deploy/classroom.sh [--processes N] [--port 8080] [--address 0.0.0.0] [--origin HOST:PORT]...
#                       [--backend-port 5101] [--run-dir DIR] [-- extra panel serve arguments]
#
# --processes  panel serve processes (default: one per core)
# --address    where nginx listens (default 127.0.0.1; 0.0.0.0 to let the class in)
# --origin     the host:port students type (repeatable; default: localhost and 127.0.0.1 at --port); the
#              processes accept websockets only from these
# The processes listen on 127.0.0.1 only, ports --backend-port, --backend-port + 1, ...
# Prints "ready: http://ADDRESS:PORT/explainer" once nginx and every process answer.
set -euo pipefail

python=${PYTHON:-python}
repo=$(cd "$(dirname "$0")/.." && pwd)
processes=$(nproc)
port=8080
address=127.0.0.1
backend_port=5101
run_dir=""
origins=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --processes) processes=$2; shift 2 ;;
    --port) port=$2; shift 2 ;;
    --address) address=$2; shift 2 ;;
    --origin) origins+=("$2"); shift 2 ;;
    --backend-port) backend_port=$2; shift 2 ;;
    --run-dir) run_dir=$2; shift 2 ;;
    --) shift; break ;;
    -h|--help) sed -n '2,14s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) echo "classroom.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
if ! [[ $processes =~ ^[1-9][0-9]*$ && $port =~ ^[0-9]+$ && $backend_port =~ ^[0-9]+$ ]]; then
  echo "classroom.sh: --processes, --port and --backend-port take whole numbers" >&2; exit 2
fi
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
if [[ ! -x $nginx_bin ]]; then
  echo "classroom.sh: nginx is not installed (Debian: apt-get install nginx)" >&2; exit 2
fi
if [[ ${#origins[@]} -eq 0 ]]; then origins=("localhost:$port" "127.0.0.1:$port"); fi
if [[ -z $run_dir ]]; then run_dir=$(mktemp -d -t cnnviz-classroom.XXXXXX); fi
mkdir -p "$run_dir"
run_dir=$(cd "$run_dir" && pwd)

pids=()
stop() {
  trap - EXIT INT TERM
  [[ -f $run_dir/nginx.pid ]] && kill "$(cat "$run_dir/nginx.pid")" 2>/dev/null || true
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop EXIT
trap 'exit 0' INT TERM

origin_args=()
for origin in "${origins[@]}"; do origin_args+=(--allow-websocket-origin "$origin"); done
servers=""
for ((i = 0; i < processes; i++)); do
  backend=$((backend_port + i))
  "$python" -m panel serve "$repo/apps/explainer.py" --address 127.0.0.1 --port "$backend" --liveness \
    --use-xheaders --reuse-sessions --warm "${origin_args[@]}" "$@" >"$run_dir/panel-$backend.log" 2>&1 &
  pids+=("$!")
  echo "$!" >"$run_dir/panel-$backend.pid"
  servers+="        server 127.0.0.1:$backend;"$'\n'
done

user_line=""
if [[ $(id -u) -eq 0 ]]; then user_line="user $(id -un);"; fi  # workers must reach the run directory
RUN_DIR=$run_dir PORT=$port ADDRESS=$address UPSTREAM_SERVERS=$servers USER_LINE=$user_line \
  envsubst '${RUN_DIR} ${PORT} ${ADDRESS} ${UPSTREAM_SERVERS} ${USER_LINE}' \
  <"$repo/deploy/nginx.conf.template" >"$run_dir/nginx.conf"

for ((i = 0; i < processes; i++)); do
  backend=$((backend_port + i))
  for ((try = 0; ; try++)); do
    if "$python" -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$backend/liveness', timeout=2)" 2>/dev/null; then
      break
    fi
    if ! kill -0 "${pids[$i]}" 2>/dev/null || ((try > 240)); then
      echo "classroom.sh: panel serve on port $backend did not start; its log:" >&2
      tail -n 20 "$run_dir/panel-$backend.log" >&2
      exit 1
    fi
    sleep 0.5
  done
done

"$nginx_bin" -p "$run_dir" -c "$run_dir/nginx.conf" -g "daemon off;" &
pids+=("$!")
for ((try = 0; ; try++)); do
  if "$python" -c "import urllib.request as u; u.urlopen('http://$address:$port/liveness', timeout=2)" 2>/dev/null; then
    break
  fi
  if ! kill -0 "${pids[-1]}" 2>/dev/null || ((try > 40)); then
    echo "classroom.sh: nginx did not start; its log:" >&2
    cat "$run_dir/nginx-error.log" >&2 || true
    exit 1
  fi
  sleep 0.25
done
echo "ready: http://$address:$port/explainer ($processes processes, logs in $run_dir)"
wait -n "${pids[@]}" || true
echo "classroom.sh: a process stopped; stopping the others" >&2
exit 1
