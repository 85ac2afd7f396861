#!/bin/sh
# fake-powercap.sh: runs a command against a synthetic RAPL tree (energy.md 4). Run it inside a
# private mount namespace, as root:
#
#   unshare -m --propagation private sh tests/fake-powercap.sh --watts 25 -- joulebench measure -- sleep 2
#
# It mounts a tmpfs over /sys/class (visible only in the namespace), creates
# powercap/intel-rapl/intel-rapl:0 (package-0) with subzone intel-rapl:0:0 (core, 60% of the
# package) plus the flat links PAPI reads, and rewrites energy_uj in place every 10 ms as
# watts x elapsed time, modulo the range (--range-uj, default 262143328850), space-padded: no
# leading zeros, since libpowercap parses base 0 (a leading zero means octal). --unreadable
# makes package-0's energy_uj mode 0400 owned by uid 1, as the kernel's (readable by root only);
# root still reads it unless CAP_DAC_OVERRIDE is dropped (setpriv --bounding-set -dac_override,
# -dac_read_search). The command's exit status is returned.
set -eu
watts=25
range=262143328850
unreadable=0
while [ $# -gt 0 ]; do
    case $1 in
    --watts) watts=$2; shift 2 ;;
    --range-uj) range=$2; shift 2 ;;
    --unreadable) unreadable=1; shift ;;
    --) shift; break ;;
    *) echo "fake-powercap.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
[ $# -gt 0 ] || { echo "usage: fake-powercap.sh [--watts W] [--range-uj R] [--unreadable] -- CMD..." >&2; exit 2; }

mount -t tmpfs -o size=1m jbfake /sys/class
Z=/sys/class/powercap/intel-rapl
P=$Z/intel-rapl:0
C=$P/intel-rapl:0:0
mkdir -p "$C"
echo 1 > "$Z/enabled"
for d in "$P" "$C"; do
    printf '%-20d\n' 0 > "$d/energy_uj"
    echo "$range" > "$d/max_energy_range_uj"
    echo 1 > "$d/enabled"
done
echo package-0 > "$P/name"
echo core > "$C/name"
ln -s intel-rapl/intel-rapl:0 /sys/class/powercap/intel-rapl:0
ln -s intel-rapl/intel-rapl:0/intel-rapl:0:0 /sys/class/powercap/intel-rapl:0:0
if [ "$unreadable" = 1 ]; then
    chown 1:1 "$P/energy_uj"
    chmod 0400 "$P/energy_uj"
fi

t0=$(date +%s%N)
(
    while :; do
        now=$(date +%s%N)
        uj=$(( (now - t0) * watts / 1000 % (range + 1) ))
        core=$(( uj * 6 / 10 ))
        printf '%-20d\n' "$uj" 1<> "$P/energy_uj"     # 1<>: in place, same inode
        printf '%-20d\n' "$core" 1<> "$C/energy_uj"
        sleep 0.01
    done
) &
tick=$!
rc=0
"$@" || rc=$?
kill "$tick"
exit "$rc"
