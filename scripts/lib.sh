# shellcheck shell=bash disable=SC2034  # constants here are used by the scripts that source this file
# Shared helpers for Meridian's scripts. Source it, don't run it:
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# Everything here is idempotent and quiet when there is nothing to do.

# Repository root, whatever the caller's working directory.
MERIDIAN_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export MERIDIAN_ROOT
# Runtime files of the dev stack (broker log, pids). Ignored by git.
STATE_DIR="$MERIDIAN_ROOT/.state"

# Defaults shared by deps/test/demo/bench. Override through the environment.
DEFAULT_ADMIN_DATABASE_URL="postgres://postgres:postgres@127.0.0.1:5432/postgres"
DEFAULT_MQTT_URL="mqtt://127.0.0.1:1884"
MQTT_HOST=127.0.0.1
MQTT_PORT=1884

# ---------------------------------------------------------------- logging

if [[ -t 1 ]]; then
  _c_step=$'\e[1;34m' _c_ok=$'\e[32m' _c_warn=$'\e[33m' _c_err=$'\e[1;31m' _c_off=$'\e[0m'
else
  _c_step='' _c_ok='' _c_warn='' _c_err='' _c_off=''
fi

step() { printf '%s==>%s %s\n' "$_c_step" "$_c_off" "$*"; }
info() { printf '    %s\n' "$*"; }
ok()   { printf '    %sok%s %s\n' "$_c_ok" "$_c_off" "$*"; }
warn() { printf '    %swarning:%s %s\n' "$_c_warn" "$_c_off" "$*" >&2; }
die()  { printf '%serror:%s %s\n' "$_c_err" "$_c_off" "$*" >&2; exit 1; }

# ---------------------------------------------------------------- privileges

# Sets SUDO to "" when running as root, "sudo" otherwise (fails if sudo is missing).
need_root_or_sudo() {
  if [[ $(id -u) -eq 0 ]]; then
    SUDO=()
  elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
  else
    die "this step needs root: re-run as root or install sudo"
  fi
}

# Run a command as the `postgres` OS user (peer authentication over the local socket).
as_postgres() {
  if [[ $(id -u) -eq 0 ]]; then
    (cd / && runuser -u postgres -- "$@")
  else
    (cd / && sudo -u postgres -- "$@")
  fi
}

# ---------------------------------------------------------------- packages

is_installed() { # pkg
  [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" == "install ok installed" ]]
}

_APT_UPDATED=0
# apt_install pkg... — installs the packages that are missing; `apt-get update` at most once per run.
apt_install() {
  local missing=() p
  for p in "$@"; do is_installed "$p" || missing+=("$p"); done
  ((${#missing[@]})) || return 0
  command -v apt-get >/dev/null 2>&1 ||
    die "missing packages (${missing[*]}) and no apt-get: install them by hand"
  need_root_or_sudo
  if ((_APT_UPDATED == 0)); then
    step "apt-get update"
    "${SUDO[@]}" apt-get update -qq
    _APT_UPDATED=1
  fi
  step "apt-get install ${missing[*]}"
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
}

# ---------------------------------------------------------------- network

port_open() { # host port
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

# wait_for_port host port [seconds=30]
wait_for_port() {
  local host=$1 port=$2 secs=${3:-30} i
  for ((i = 0; i < secs * 10; i++)); do
    port_open "$host" "$port" && return 0
    sleep 0.1
  done
  return 1
}

# wait_for_http url [seconds=60] [pid] — stops early if pid dies.
wait_for_http() {
  local url=$1 secs=${2:-60} pid=${3:-} i
  for ((i = 0; i < secs * 4; i++)); do
    curl -sf -o /dev/null --max-time 2 "$url" && return 0
    if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then return 1; fi
    sleep 0.25
  done
  return 1
}

# ---------------------------------------------------------------- processes

# stop_pid pid seconds signal... — sends each signal in turn, giving the process `seconds`
# to exit after each, then SIGKILL. Background processes of a non-interactive shell start
# with SIGINT ignored, so escalate (INT TERM) rather than rely on one signal. Reaps the pid.
stop_pid() {
  local pid=$1 secs=$2 sig i
  shift 2
  [[ -n $pid ]] || return 0
  for sig in "$@" KILL; do
    kill -0 "$pid" 2>/dev/null || break
    [[ $sig == KILL ]] && warn "pid $pid still running after SIG${*// /, SIG}; killing it"
    kill "-$sig" "$pid" 2>/dev/null || true
    for ((i = 0; i < secs * 10; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  done
  wait "$pid" 2>/dev/null || true
}

# ---------------------------------------------------------------- database URLs

# url_part url user|password|host|port|db — pieces of postgres://user:pass@host:port/db?params
url_part() {
  local re='^postgres(ql)?://(([^:@/]*)(:([^@/]*))?@)?([^:/?]*)(:([0-9]+))?(/([^?]*))?'
  [[ $1 =~ $re ]] || die "cannot parse database URL: $1"
  case $2 in
    user) echo "${BASH_REMATCH[3]:-postgres}" ;;
    password) echo "${BASH_REMATCH[5]}" ;;
    host) echo "${BASH_REMATCH[6]:-127.0.0.1}" ;;
    port) echo "${BASH_REMATCH[8]:-5432}" ;;
    db) echo "${BASH_REMATCH[10]:-${BASH_REMATCH[3]:-postgres}}" ;;
  esac
}

# url_with_db url name — the same server and credentials, another database.
url_with_db() {
  local url=$1 name=$2 query=''
  [[ $url == *\?* ]] && query="?${url#*\?}" && url=${url%%\?*}
  local rest=${url#*://}
  if [[ $rest == */* ]]; then url="${url%/*}/$name"; else url="$url/$name"; fi
  echo "$url$query"
}

# pg url args... — psql that never prompts for a password and stops on the first error.
pg() {
  local url=$1
  shift
  PGCONNECT_TIMEOUT=${PGCONNECT_TIMEOUT:-5} PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning" psql -X -w -q -v ON_ERROR_STOP=1 -d "$url" "$@"
}

is_local_host() {
  case $1 in 127.0.0.1 | localhost | ::1 | '[::1]' | /*) return 0 ;; *) return 1 ;; esac
}

# ---------------------------------------------------------------- toolchain

# Puts rustup's cargo on PATH for non-login shells (CI runs `bash .ci/run`).
ensure_cargo_on_path() {
  if ! command -v cargo >/dev/null 2>&1 && [[ -x "${CARGO_HOME:-$HOME/.cargo}/bin/cargo" ]]; then
    export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
  fi
  command -v cargo >/dev/null 2>&1
}

target_dir() {
  echo "${CARGO_TARGET_DIR:-$MERIDIAN_ROOT/target}"
}

# Sets MERIDIAN and SIM to the release binaries the benchmarks run: those in $MERIDIAN_BIN_DIR
# (built elsewhere, e.g. from another commit, to compare) or target/release, built now.
release_binaries() {
  local bin
  if [[ -n ${MERIDIAN_BIN_DIR:-} ]]; then
    bin=$MERIDIAN_BIN_DIR
  else
    step "building release binaries"
    cargo build --release --locked -p meridian -p meridian-sim
    bin=$(target_dir)/release
  fi
  MERIDIAN=$bin/meridian
  SIM=$bin/meridian-sim
}
