#!/bin/sh
# WAL archiving for point-in-time recovery (design 2.5; docs/runbook.md "Backups"), as PostgreSQL's
# archive_command:
#
#   archive_command = 'sh /usr/local/lib/nof0/archive-wal.sh %p %f /var/lib/postgresql/wal-archive'
#
# Copies the segment %p to DIR/%f so that DIR never holds a partial file: written under a temporary
# name, flushed to disk, then renamed (and the rename flushed). PostgreSQL retries a segment whose
# command failed; a segment already archived with the same bytes (a retry after a crash) succeeds
# again, one with other bytes fails loudly instead of being overwritten.
set -eu
src=$1
name=$2
dir=$3
if [ -f "$dir/$name" ]; then
    if cmp -s "$src" "$dir/$name"; then
        exit 0
    fi
    echo "archive-wal: $dir/$name exists with other contents; not overwriting it" >&2
    exit 1
fi
tmp="$dir/.$name.tmp"
cp "$src" "$tmp"
sync "$tmp"
mv "$tmp" "$dir/$name"
sync "$dir"
