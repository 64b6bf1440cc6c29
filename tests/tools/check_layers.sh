#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tests/tools/check_layers.sh - the dependency rule of DESIGN.md and STYLE.md §III.3:
# runtime <- conf <- filters <- proxy. Fails, naming each offending line, when a lower layer
# includes a higher one, when code outside runtime/ reaches into the runtime's internals
# (runtime/internal.h, rt__ symbols), declares thread-locals, or includes h2o or declares
# phr_* anywhere but proxy/h2o_compat.h (and the fuzz target that exercises it).
# Usage: check_layers.sh [REPO_ROOT]
set -uo pipefail
cd "${1:-$(dirname "${BASH_SOURCE[0]}")/../..}"

status=0
forbid() { # forbid DESCRIPTION PATTERN DIR...
    local what=$1 pattern=$2 hits
    shift 2
    hits=$(grep -rnE --include='*.c' --include='*.h' "$pattern" "$@" 2>/dev/null)
    if [ -n "$hits" ]; then
        echo "layer violation: $what"
        echo "$hits" | sed 's/^/  /'
        status=1
    fi
}

forbid "runtime/ includes a higher layer" '#include "(conf|filters|proxy)/' runtime
forbid "conf/ includes filters/ or proxy/" '#include "(filters|proxy)/' conf
forbid "filters/ includes proxy/" '#include "proxy/' filters
forbid "runtime internals used outside runtime/" '#include "runtime/internal.h"|\brt__[a-z]' \
    conf filters proxy
forbid "_Thread_local outside runtime/tls.c" '_Thread_local|__thread\b' conf filters proxy
hits=$(grep -rlnE --include='*.c' --include='*.h' '#include <h2o|\bphr_[a-z_]+\(' \
    conf filters proxy | grep -vE '^proxy/(h2o_compat\.h|http1\.c)$')
if [ -n "$hits" ]; then
    echo "layer violation: h2o headers or phr_* outside proxy/h2o_compat.h and proxy/http1.c"
    echo "$hits" | sed 's/^/  /'
    status=1
fi
[ "$status" -eq 0 ] && echo "layers: ok"
exit "$status"
