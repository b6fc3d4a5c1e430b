#!/bin/sh
# init (PID 1) of a user-mode-linux boot that only looks for ftrace's kmem page events.
# Writes into the host directory $UML_OUT (through hostfs): `kernel` (uname -r),
# `filesystems` (/proc/filesystems), `mount` (what mounting tracefs said) and `kmem` (the
# kmem events under /sys/kernel/tracing/events/kmem, one a line, with their `format` files
# copied as format-NAME). probe_tracefs.py reads them.

export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
uname -r > "$UML_OUT/kernel"
cat /proc/filesystems > "$UML_OUT/filesystems"
T=/sys/kernel/tracing
if [ -d "$T/events" ] || mount -t tracefs nodev "$T" > "$UML_OUT/mount" 2>&1; then
    ls "$T/events/kmem" > "$UML_OUT/kmem" 2>/dev/null
    for e in mm_page_alloc mm_page_free mm_page_free_batched mm_page_alloc_zone_locked \
             mm_page_pcpu_drain mm_page_alloc_extfrag; do
        cat "$T/events/kmem/$e/format" > "$UML_OUT/format-$e" 2>/dev/null
    done
fi
echo done > "$UML_OUT/done"
echo o > /proc/sysrq-trigger
sleep 10
