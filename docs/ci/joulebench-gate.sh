#!/usr/bin/env bash
# joulebench's CI gate (docs/ci.md): builds joulebench at the base and the head commit, runs the
# same suite slice with each on this machine, compares them, writes the Markdown for a
# pull-request comment and appends the head run to a SQLite history with its trend page.
#
#     docs/ci/joulebench-gate.sh BASE_REF HEAD_REF [WORK_DIR]
#
# Exit status: 0 no significant regression, 1 regression, 2 error (as `joulebench compare`).
# WORK_DIR (default .joulebench-ci) receives base/ and head/ (the run directories),
# comment.md, trend.html and, unless JB_HISTORY says otherwise, history.sqlite.
#
# Settings (environment):
#   JB_RUN_ARGS      what to run (default: the embedded default, --limit 10 per suite);
#                    e.g. "--model models/small --suite chartqa --data data --limit 50"
#   JB_RUN_EXTRA     added to both runs (default: --idle-s 0 --threads 1: compare gates CPU
#                    seconds of single-threaded runs only)
#   JB_BASE_RUN_OPTS, JB_HEAD_RUN_OPTS   added to one run only
#   JB_COMPARE_OPTS  added to `compare` (default none: accuracy, work and CPU time are
#                    gated, and measured energy where the runner has counters; add
#                    --gate-estimated on a dedicated runner, see docs/ci.md)
#   JB_HISTORY       the SQLite history to append to (default WORK_DIR/history.sqlite)
#   JB_BASE_BIN, JB_HEAD_BIN   prebuilt joulebench binaries: skip building that side
#   JB_SRC           the joulebench checkout to build from (default: this script's repository)
set -euo pipefail

if [ $# -lt 2 ] || [ $# -gt 3 ]; then
    sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
fi
base_ref=$1
head_ref=$2
work=${3:-.joulebench-ci}
src=${JB_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
run_args=${JB_RUN_ARGS:---limit 10}
run_extra=${JB_RUN_EXTRA:---idle-s 0 --threads 1}
compare_opts=${JB_COMPARE_OPTS:-}
history=${JB_HISTORY:-$work/history.sqlite}
jobs=$(nproc 2>/dev/null || echo 2)

say() { printf '==> %s\n' "$*" >&2; }

mkdir -p "$work"
work=$(cd "$work" && pwd)

# build REF: joulebench of commit REF, built out of a git worktree; prints the binary's path.
build() {
    local ref=$1 tree=$work/src-$1
    say "build joulebench at $ref"
    rm -rf "$tree"
    git -C "$src" worktree prune
    git -C "$src" worktree add --detach "$tree" "$ref" >&2
    (cd "$tree" && autoreconf -fi >/dev/null && mkdir -p build &&
        cd build && ../configure -q >&2 && make -s -j"$jobs" joulebench >&2) ||
        { echo "joulebench-gate: building $ref failed" >&2; exit 2; }
    echo "$tree/build/joulebench"
}

base_bin=${JB_BASE_BIN:-}
head_bin=${JB_HEAD_BIN:-}
[ -n "$base_bin" ] || base_bin=$(build "$base_ref")
[ -n "$head_bin" ] || head_bin=$(build "$head_ref")

# Base and head run one after the other on this machine, with the same settings, so that the
# time and energy gates compare like with like.
for side in base head; do
    bin=$base_bin opts=${JB_BASE_RUN_OPTS:-}
    if [ "$side" = head ]; then bin=$head_bin opts=${JB_HEAD_RUN_OPTS:-}; fi
    say "joulebench run ($side: $("$bin" --version))"
    rm -rf "${work:?}/$side"
    # shellcheck disable=SC2086 # the settings are word lists
    "$bin" run --out "$work/$side" $run_args $run_extra $opts --format md >/dev/null ||
        { echo "joulebench-gate: the $side run failed" >&2; exit 2; }
done

say "joulebench compare"
rc=0
# shellcheck disable=SC2086
"$head_bin" compare "$work/base" "$work/head" $compare_opts --markdown "$work/comment.md" \
    >/dev/null || rc=$?
if [ "$rc" -ge 2 ]; then
    echo "joulebench-gate: compare failed (exit $rc)" >&2
    exit 2
fi

say "joulebench history -> $history"
"$head_bin" history "$history" --add "$work/head" --html "$work/trend.html" >/dev/null

verdict="no significant regression"
[ "$rc" = 1 ] && verdict=REGRESSION
echo "joulebench-gate: $verdict; comment: $work/comment.md; trend: $work/trend.html"
exit "$rc"
