#!/usr/bin/env bash
# Makes sure everything Meridian needs on this machine is installed and running:
#   1. PostgreSQL server (installed, cluster started) + PostGIS for the running server's major version
#   2. a working login for DATABASE_URL (admin URL; default postgres:postgres@127.0.0.1:5432)
#   3. Mosquitto + clients, and the project broker on 127.0.0.1:1884 with deploy/mosquitto.conf
#   4. a Rust toolchain (cargo) and a C linker
# Idempotent: when everything is there it only checks, in a second or so.
# Debian/Ubuntu (apt). Uses sudo only when not root.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ADMIN_URL=${DATABASE_URL:-$DEFAULT_ADMIN_DATABASE_URL}
PG_HOST=$(url_part "$ADMIN_URL" host)
PG_PORT=$(url_part "$ADMIN_URL" port)
PG_USER=$(url_part "$ADMIN_URL" user)
PG_PASSWORD=$(url_part "$ADMIN_URL" password)

# ------------------------------------------------------------------ PostgreSQL

# Prints "version name status" of the Debian cluster listening on $PG_PORT, if any.
cluster_on_port() {
  command -v pg_lsclusters >/dev/null 2>&1 || return 0
  pg_lsclusters --no-header 2>/dev/null | awk -v port="$PG_PORT" '$3 == port { print $1, $2, $4; exit }'
}

ensure_postgres_server() {
  step "PostgreSQL server on $PG_HOST:$PG_PORT"
  if ! is_local_host "$PG_HOST"; then
    # Not ours to install or start: just make sure the client is there.
    command -v psql >/dev/null 2>&1 || apt_install postgresql-client
    info "remote server: not installing or starting anything"
    return 0
  fi

  if ! is_installed postgresql && [[ -z "$(cluster_on_port)" ]]; then
    if pg_isready -q -h "$PG_HOST" -p "$PG_PORT" 2>/dev/null; then
      info "a server answers on port $PG_PORT but was not installed from Debian packages; using it as is"
      return 0
    fi
    apt_install postgresql
  fi

  local cluster ver name status
  cluster=$(cluster_on_port)
  if [[ -z $cluster ]]; then
    # Package present but no cluster on our port (e.g. it was dropped): create one.
    ver=$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf "%f\n" | sort -V | tail -n1)
    need_root_or_sudo
    step "creating cluster $ver/main on port $PG_PORT"
    "${SUDO[@]}" pg_createcluster --port "$PG_PORT" "$ver" main
    cluster=$(cluster_on_port)
    [[ -n $cluster ]] || die "pg_createcluster did not create a cluster on port $PG_PORT"
  fi
  read -r ver name status <<<"$cluster"
  if [[ $status != online* ]]; then
    need_root_or_sudo
    step "starting PostgreSQL cluster $ver/$name (no systemd: pg_ctlcluster)"
    "${SUDO[@]}" pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" start
  fi
  wait_for_port "$PG_HOST" "$PG_PORT" 30 || die "PostgreSQL did not open port $PG_PORT (see /var/log/postgresql/)"
  ok "PostgreSQL $ver/$name running"
}

# Major version of the server that actually runs on $PG_PORT.
server_major() {
  local cluster
  cluster=$(cluster_on_port)
  if [[ -n $cluster ]]; then
    echo "${cluster%% *}"
  else
    local num
    num=$(pg "$ADMIN_URL" -tAc 'show server_version_num') || return 1
    echo $((num / 10000))
  fi
}

ensure_postgis() {
  is_local_host "$PG_HOST" || return 0
  local major
  major=$(server_major) || die "cannot determine the PostgreSQL server version"
  step "PostGIS for PostgreSQL $major"
  apt_install "postgresql-$major-postgis-3"
  ok "postgresql-$major-postgis-3 installed"
}

ensure_login() {
  step "login as $PG_USER via DATABASE_URL"
  if pg "$ADMIN_URL" -tAc 'select 1' >/dev/null 2>&1; then
    ok "connected"
  elif is_local_host "$PG_HOST" && [[ $PG_USER == postgres && -n $PG_PASSWORD ]] && [[ -n "$(cluster_on_port)" ]]; then
    # Fresh Debian install: TCP logins use scram-sha-256 and the postgres role has no password.
    info "cannot log in over TCP; setting the password of role postgres from DATABASE_URL (peer auth on the local socket)"
    local pw=${PG_PASSWORD//\'/\'\'}
    as_postgres psql -X -q -v ON_ERROR_STOP=1 -p "$PG_PORT" -c "alter role postgres with password '$pw'" >/dev/null
    pg "$ADMIN_URL" -tAc 'select 1' >/dev/null || die "still cannot connect with DATABASE_URL=$ADMIN_URL (check pg_hba.conf)"
    ok "password set; connected"
  else
    pg "$ADMIN_URL" -tAc 'select 1' || true
    die "cannot connect with DATABASE_URL=$ADMIN_URL"
  fi
  local postgis
  postgis=$(pg "$ADMIN_URL" -tAc "select default_version from pg_available_extensions where name = 'postgis'")
  [[ -n $postgis ]] || die "the server has no PostGIS extension available (install postgresql-<major>-postgis-3 on the server)"
  ok "PostGIS $postgis available"
}

# ------------------------------------------------------------------ Mosquitto

mosquitto_bin() {
  command -v mosquitto 2>/dev/null || echo /usr/sbin/mosquitto
}

ensure_broker() {
  step "Mosquitto (project broker on $MQTT_HOST:$MQTT_PORT)"
  apt_install mosquitto mosquitto-clients
  if port_open "$MQTT_HOST" "$MQTT_PORT"; then
    ok "port $MQTT_PORT already answers (pid $(cat "$STATE_DIR/mosquitto.pid" 2>/dev/null || echo '?'))"
    return 0
  fi
  mkdir -p "$STATE_DIR"
  local log="$STATE_DIR/mosquitto.log"
  info "starting $(mosquitto_bin) -c deploy/mosquitto.conf (log: ${log#"$MERIDIAN_ROOT"/})"
  # No pid_file and no persistence in the config, so the privilege drop to user
  # `mosquitto` when started as root can't fail on file permissions.
  # setsid + all fds redirected: the broker outlives this script and holds no
  # pipe open for whoever runs us (CI waits for its pipes to close).
  # stdbuf -oL: `log_dest stdout` is block-buffered when stdout is a file.
  setsid stdbuf -oL "$(mosquitto_bin)" -c "$MERIDIAN_ROOT/deploy/mosquitto.conf" >>"$log" 2>&1 </dev/null &
  echo $! >"$STATE_DIR/mosquitto.pid"
  if ! wait_for_port "$MQTT_HOST" "$MQTT_PORT" 10; then
    tail -n 20 "$log" >&2 || true
    die "Mosquitto did not start on port $MQTT_PORT"
  fi
  ok "Mosquitto running (pid $(cat "$STATE_DIR/mosquitto.pid"))"
}

# ------------------------------------------------------------------ Rust

ensure_rust() {
  step "Rust toolchain"
  if ! ensure_cargo_on_path; then
    cat >&2 <<'EOF'
error: cargo not found. Meridian needs Rust >= 1.80 (Debian's packaged rustc is too old).
Install it with rustup, then re-run:
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y
    . "$HOME/.cargo/env"
EOF
    exit 1
  fi
  ok "$(cargo --version)"
  # Rust links with the system C compiler; our crates need nothing else (pure Rust, no OpenSSL).
  if ! command -v cc >/dev/null 2>&1; then
    apt_install build-essential
  fi
}

# ------------------------------------------------------------------ main

main() {
  command -v curl >/dev/null 2>&1 || apt_install curl ca-certificates
  ensure_postgres_server
  ensure_postgis
  ensure_login
  ensure_broker
  ensure_rust
  step "dependencies ready: DATABASE_URL=$ADMIN_URL MQTT_URL=$DEFAULT_MQTT_URL"
}

main "$@"
