#!/bin/sh
# init (PID 1) of a user-mode-linux boot: a scripted load, with a snapshot of /proc/buddyinfo,
# /proc/pagetypeinfo and /proc/vmstat after each stage, written through hostfs into the host
# directory $UML_OUT (one sub-directory per stage, their names and uptimes in $UML_OUT/stages).
#
# Parameters come from the kernel command line: the kernel passes every unknown `name=value`
# to init as an environment variable (run_uml.py sets them):
#   UML_OUT        host directory for the snapshots
#   UML_HOG        the compiled hog.c
#   UML_ANON_MIB   anonymous memory held by one process
#   UML_FORKS      processes forked, each holding UML_FORK_MIB of anonymous memory
#   UML_WRITE_MIB  written with dd into a new file on the ext2 file system of /dev/ubda
# /dev/ubda is an ext2 image run_uml.py made with a tree of files, /tree, which the page_cache
# stage reads (hostfs is no use for that: it keeps no page cache of a host file once closed).
# It never stops on an error: every stage is attempted, and the machine always powers off.

export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc

snap() {
    mkdir -p "$UML_OUT/$1"
    for f in buddyinfo pagetypeinfo vmstat; do
        cat "/proc/$f" > "$UML_OUT/$1/$f"
    done
    echo "$1 $(cut -d ' ' -f 1 /proc/uptime)" >> "$UML_OUT/stages"
}

wait_for() {  # the hog's ready file, or 120 s
    i=0
    while [ ! -e "$1" ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i + 1)); done
}

uname -r > "$UML_OUT/kernel"
snap boot

# Page cache (and dentries, inodes, radix-tree nodes): read every file of the tree.
mount -t ext2 /dev/ubda /mnt
find /mnt/tree -type f -exec cat {} + > /dev/null
snap page_cache

"$UML_HOG" "$UML_ANON_MIB" "$UML_OUT/anon.ready" &
ANON=$!
wait_for "$UML_OUT/anon.ready"
snap anon

"$UML_HOG" 0 "$UML_OUT/forks.ready" "$UML_FORKS" "$UML_FORK_MIB" &
FORKS=$!
wait_for "$UML_OUT/forks.ready"
snap forks

# Writeback and reclaim: more dirty page cache than the guest has memory.
dd if=/dev/zero of=/mnt/fill bs=1M count="$UML_WRITE_MIB" 2> "$UML_OUT/dd.log"
sync
snap ext2_write

kill "$FORKS" "$ANON"
wait
rm -f /mnt/fill
snap freed

sync
echo 3 > /proc/sys/vm/drop_caches
snap drop_caches

echo 1 > /proc/sys/vm/compact_memory
snap compact

umount /mnt
rm -f "$UML_OUT/anon.ready" "$UML_OUT/forks.ready"
echo done > "$UML_OUT/done"
echo o > /proc/sysrq-trigger
sleep 10
