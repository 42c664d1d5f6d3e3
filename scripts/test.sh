#!/usr/bin/env bash
# The whole test suite, against a real PostgreSQL + PostGIS and a real Mosquitto:
#   bash scripts/test.sh [extra cargo test args, e.g. -- --nocapture]
# Installs/starts what is missing (scripts/deps.sh), runs cargo test, then the API contract
# (scripts/api-contract.sh: OpenAPI validation + schemathesis against a running node).
# Tests create their own randomly named databases from the admin DATABASE_URL.
# Exit code: cargo's if it failed, else the contract's; the last line totals both.
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
# Keep cargo's exit code, and close with one total over all test binaries and the contract's
# two checks (both counted failed if the contract script stops before reporting).
log=$(mktemp)
set +e
cargo test --workspace --locked "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
step "API contract (scripts/api-contract.sh)"
bash scripts/api-contract.sh 2>&1 | tee -a "$log"
contract_rc=${PIPESTATUS[0]}
set -e
awk -v crc="$contract_rc" '
  /^test result:/ { p += $4; f += $6 }
  /^contract: [0-9]+ passed, [0-9]+ failed$/ { p += $2; f += $4; seen = 1 }
  END { if (!seen && crc != 0) f += 2; printf "total: %d passed, %d failed\n", p, f }' "$log"
rm -f "$log"
if ((rc != 0)); then exit "$rc"; fi
exit "$contract_rc"
