#!/usr/bin/env bash
# `npm run format`: Prettier over the whole tree (.prettierignore says what it leaves alone).
# It runs twice because Prettier's member-chain layout is not idempotent on a first pass over
# hand-formatted code: a long `fc.uuid().map(...)` chain is broken one way, then joined back the
# next time (seen in test/fuzz.*.test.ts). The second pass leaves a tree that `prettier --check`
# (part of `npm run lint`) accepts; on an already formatted tree both passes change nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
npx prettier --write --log-level warn .
npx prettier --write --log-level warn .
