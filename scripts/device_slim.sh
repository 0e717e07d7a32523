#!/usr/bin/env bash
# The device tool copies the tracked tree plus the carried paths, 64 MiB in all; the shipped zoo
# weights and the committed checkpoints alone take more than that. Before a device call, `slim`
# takes the large weight files out of the index (kept on disk, ignored through .git/info/exclude) so the data and init weights can
# be carried; `restore` puts them back. Never commit while slim (the weights would be deleted:
# `git status` then shows them as deleted, and CI's zoo tests fail).
#
#   bash scripts/device_slim.sh slim [MIN_BYTES]   # default 4000000
#   bash scripts/device_slim.sh restore
#   bash scripts/device_slim.sh status
set -euo pipefail
cd "$(dirname "$0")/.."
LIST=.git/device-slim.list
EXCL=.git/info/exclude
case "${1:-status}" in
  slim)
    [ -s "$LIST" ] && { echo "already slim (see $LIST)"; exit 1; }
    git ls-files -z sccdm/zoo/weights checkpoints | xargs -0 -I{} sh -c 'sz=$(stat -c %s "{}"); [ "$sz" -ge '"${2:-4000000}"' ] && echo "{}"' > "$LIST" || true
    [ -s "$LIST" ] || { echo "nothing to slim"; rm -f "$LIST"; exit 0; }
    xargs -a "$LIST" git rm -q --cached --
    { echo "# device-slim"; sed 's|^|/|' "$LIST"; } >> "$EXCL"
    echo "slim: $(wc -l < "$LIST") files out of the index; tracked now $(git ls-files -z | du -cb --files0-from=- | tail -1 | cut -f1) bytes"
    ;;
  restore)
    [ -s "$LIST" ] || { echo "not slim"; exit 0; }
    sed -i '/^# device-slim$/,$d' "$EXCL"
    xargs -a "$LIST" git add -f --
    rm -f "$LIST"
    echo "restored; git status:"; git status --short sccdm/zoo/weights checkpoints | head
    ;;
  status)
    [ -s "$LIST" ] && echo "SLIM: $(wc -l < "$LIST") weight files out of the index" || echo "not slim"
    ;;
esac
