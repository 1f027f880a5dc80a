#!/usr/bin/env bash
# What a call of the `device` tool sends is this checkout's tracked and untracked-not-ignored files plus the
# carried paths, 64 MiB at most; the shipped weights in models/ alone are about 140 MiB. So, around a device call:
#   bash scripts/device_tree.sh hide      # untrack models/*.safetensors and ignore them (the files stay on disk)
#   bash scripts/device_tree.sh size .gpu/r7 .whl   # MiB that would travel, with these carried paths
#   ... the device call ...
#   bash scripts/device_tree.sh restore   # track them again exactly as in HEAD; run it before any commit
set -euo pipefail
cd "$(dirname "$0")/.."
EXCLUDE=.git/info/exclude
LINE='/models/*.safetensors'
MARK='# added by scripts/device_tree.sh hide (restore removes it)'
case "${1:-}" in
  hide)
    git rm -q --cached --ignore-unmatch models/*.safetensors
    grep -qxF "$LINE" "$EXCLUDE" 2>/dev/null || printf '%s\n%s\n' "$MARK" "$LINE" >> "$EXCLUDE"
    echo "models/*.safetensors untracked and ignored; run 'bash scripts/device_tree.sh restore' after the device call" ;;
  restore)
    if [ -f "$EXCLUDE" ]; then grep -vxF -e "$LINE" -e "$MARK" "$EXCLUDE" > "$EXCLUDE.tmp" || true; mv "$EXCLUDE.tmp" "$EXCLUDE"; fi
    git reset -q HEAD -- models
    git status --short -- models
    echo "models/ tracked again" ;;
  size)
    shift
    { git ls-files -z; git ls-files -z --others --exclude-standard; for p in "$@"; do find "$p" -type f -print0; done; } \
      | xargs -0 -r du -cb 2>/dev/null | tail -1 | awk '{printf "%.1f MiB would travel (limit 64 MiB)\n", $1 / 1048576}' ;;
  *) echo "usage: $0 hide | restore | size [CARRIED_PATH ...]" >&2; exit 2 ;;
esac
