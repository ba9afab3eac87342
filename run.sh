#!/usr/bin/env bash
# Sets up what this machine lacks (Node >= 22.18, a Vulkan driver, node_modules), then runs the
# main job: `goe run` with its embedded default. Extra arguments go to `goe run`.
set -euo pipefail
cd "$(dirname "$0")"
source .ci/env.sh
[[ -d node_modules/webgpu ]] || npm ci --no-audit --no-fund
exec node src/cli/goe.ts run "$@"
