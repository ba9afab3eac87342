#!/usr/bin/env bash
# Sets up what this machine lacks (Node >= 22.18, a Vulkan driver, node_modules), then runs the
# typecheck and the whole test suite on whatever adapter is found (GOE_ADAPTER picks one).
set -euo pipefail
cd "$(dirname "$0")"
source .ci/env.sh
[[ -d node_modules/webgpu ]] || npm ci --no-audit --no-fund
npm run typecheck
npm test
