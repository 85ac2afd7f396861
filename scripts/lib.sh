# Shared by scripts/test and scripts/quickstart: bootstrap autotools and build in build/NAME.
# Sourced, not run.

jb_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
jb_jobs=$(nproc 2>/dev/null || echo 2)

jb_say() { printf '\n==> %s\n' "$*" >&2; }

# Generates ./configure when it is missing or older than its inputs.
jb_bootstrap() {
    cd "$jb_root"
    local stale=0 f
    [ -x configure ] || stale=1
    for f in configure.ac Makefile.am */local.mk; do
        [ "$f" -nt configure ] && stale=1
    done
    if [ "$stale" = 1 ]; then
        jb_say "autoreconf"
        autoreconf -fi >/dev/null
    fi
}

# jb_build DIR [CONFIGURE_ARGS...]: configures (once per set of arguments) and builds in DIR.
jb_build() {
    local dir=$jb_root/$1
    shift
    mkdir -p "$dir"
    local want="$*"
    if [ ! -f "$dir/Makefile" ] || [ "$(cat "$dir/.configure-args" 2>/dev/null)" != "$want" ] \
        || [ "$jb_root/configure" -nt "$dir/Makefile" ]; then
        jb_say "configure $want (in ${dir#$jb_root/})"
        (cd "$dir" && "$jb_root/configure" -q "$@") || return 1
        echo "$want" > "$dir/.configure-args"
    fi
    jb_say "make (in ${dir#$jb_root/})"
    make -C "$dir" -s -j"$jb_jobs" >/dev/null || make -C "$dir" -j1 || return 1
}
