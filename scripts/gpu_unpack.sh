#!/usr/bin/env bash
# Reassemble what scripts/gpu_recipe.sh sent back and unpack it under DEST (default runs/gpu):
# DEST/zoo is then a zoo folder for `python -m sccdm.zoo.publish --merge DEST/zoo`.
set -euo pipefail
SRC=${1:?folder with meta.tgz and w/}; DEST=${2:-runs/gpu}
mkdir -p "$DEST"
tar -xzf "$SRC/meta.tgz" -C "$DEST"
for first in "$SRC"/w/*.part00; do
  [ -e "$first" ] || continue
  base=$(basename "$first" .part00)
  rel=$(echo "$base" | sed 's|__|/|')
  mkdir -p "$DEST/zoo/$(dirname "$rel")"
  cat "$SRC/w/$base".part* > "$DEST/zoo/$rel"
done
cp "$SRC"/*.log "$SRC"/training_speed_* "$DEST"/ 2>/dev/null || true
echo "unpacked into $DEST"
