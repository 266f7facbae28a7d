#!/usr/bin/env bash
# Real pedestrian footage without internet beyond the package registries: Debian's opencv-doc ships
# examples/data/vtest.avi (795 frames, 768x576, static campus camera, unlabeled; the view of PETS 2009
# S2.L1). Usage: scripts/fetch_footage.sh DEST_DIR  ->  DEST_DIR/vtest.avi (nothing done if present).
# Kept out of the repository: it is fetched, like the rest of the real data.
set -euo pipefail
dest="${1:?usage: fetch_footage.sh DEST_DIR}"
if [ -s "$dest/vtest.avi" ]; then exit 0; fi
mkdir -p "$dest"
dest="$(cd "$dest" && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
if ! apt-get download opencv-doc >/dev/null 2>&1; then
    apt-get update -qq >/dev/null 2>&1 || true
    apt-get download opencv-doc >/dev/null 2>&1 || {
        echo "fetch_footage.sh: 'apt-get download opencv-doc' failed (Debian package registry unreachable?)" >&2
        exit 1
    }
fi
dpkg -x opencv-doc_*.deb pkg
cp pkg/usr/share/doc/opencv-doc/examples/data/vtest.avi "$dest/vtest.avi.tmp"
mv "$dest/vtest.avi.tmp" "$dest/vtest.avi"
echo "wrote $dest/vtest.avi"
