#!/usr/bin/env bash
# The whole test suite, against a real PostgreSQL + PostGIS and a real Mosquitto:
#   bash scripts/test.sh [extra cargo test args, e.g. -- --nocapture]
# Installs/starts what is missing (scripts/deps.sh), then runs cargo test.
# Tests create their own randomly named databases from the admin DATABASE_URL.
# Exit code is cargo's.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$MERIDIAN_ROOT"

bash scripts/deps.sh
ensure_cargo_on_path || die "cargo not found"

export DATABASE_URL=${DATABASE_URL:-$DEFAULT_ADMIN_DATABASE_URL}
export MQTT_URL=${MQTT_URL:-$DEFAULT_MQTT_URL}
export RUST_BACKTRACE=${RUST_BACKTRACE:-1}

step "cargo test --workspace --locked${*:+ $*} (DATABASE_URL=$DATABASE_URL MQTT_URL=$MQTT_URL)"
# Keep cargo's exit code, and close with one total over all test binaries.
log=$(mktemp)
set +e
cargo test --workspace --locked "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
awk '/^test result:/ { p += $4; f += $6 } END { printf "total: %d passed, %d failed\n", p, f }' "$log"
rm -f "$log"
exit "$rc"
