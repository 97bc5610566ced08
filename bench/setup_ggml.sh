#!/usr/bin/env bash
# Fetches llama.cpp's ggml, for bench's ggml rows (QK_GGML=ON), by package name: the pinned sdist
# of llama-cpp-python on PyPI vendors the whole llama.cpp tree. Downloads it into build/ (once),
# checks its size and sha256, and extracts only vendor/llama.cpp/ggml to build/deps/ggml (with
# a stamp naming the sdist and llama.cpp's commit). An extracted copy with the right stamp is
# used as it is, without network (a GPU host gets it carried). Prints the directory.
# Exit: 0 ready; 2 a download or copy that is not the pinned file; 3 no copy and no download
# (no network): callers build without ggml rows, or fail where a registry must be reachable.
set -euo pipefail
cd "$(dirname "$0")/.."
version=0.3.36
sdist=llama_cpp_python-$version.tar.gz
size=76589250
sha256=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
dest=build/deps/ggml
stamp="llama-cpp-python $version sha256 $sha256"

if [ -f "$dest/QKBENCH_SOURCE" ] && [ "$(head -1 "$dest/QKBENCH_SOURCE")" = "$stamp" ]; then
  echo "$PWD/$dest"
  exit 0
fi

mkdir -p build/deps
tarball=build/$sdist
if [ ! -f "$tarball" ]; then
  # PyPI's simple index (what pip reads; PIP_INDEX_URL where set) names the sdist's URL
  index=${PIP_INDEX_URL:-https://pypi.org/simple}
  if ! /usr/bin/python3 - "${index%/}/llama-cpp-python/" "$sdist" "$tarball.part" <<'EOF' 2>build/deps/download.log; then
import json, sys, urllib.parse, urllib.request
page, name, out = sys.argv[1:]
request = urllib.request.Request(page, headers={"Accept": "application/vnd.pypi.simple.v1+json"})
with urllib.request.urlopen(request, timeout=30) as r:
    urls = [f["url"] for f in json.load(r)["files"] if f["filename"] == name]
if not urls:
    sys.exit(f"{page} lists no {name}")
with urllib.request.urlopen(urllib.parse.urljoin(page, urls[0]), timeout=60) as r, \
        open(out, "wb") as f:
    while chunk := r.read(1 << 20):
        f.write(chunk)
EOF
    rm -f "$tarball.part"
    echo "setup_ggml: cannot download $sdist from $index ($(tail -1 build/deps/download.log))" >&2
    exit 3
  fi
  mv "$tarball.part" "$tarball"
fi

got_size=$(stat -c %s "$tarball")
got_sha=$(sha256sum "$tarball" | cut -d' ' -f1)
if [ "$got_size" != "$size" ] || [ "$got_sha" != "$sha256" ]; then
  # removed, so that the next run downloads it again rather than failing on it forever
  rm -f "$tarball"
  echo "setup_ggml: $tarball was $got_size bytes, sha256 $got_sha; pinned: $size bytes, sha256 $sha256 (removed: run again to download it afresh)" >&2
  exit 2
fi

# Extract beside the destination, then rename: an interrupted run leaves no half tree behind.
tmp=$(mktemp -d build/deps/extract.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
top=llama_cpp_python-$version
tar -xzf "$tarball" -C "$tmp" "$top/vendor/llama.cpp/ggml" "$top/.git/modules/vendor/llama.cpp/HEAD"
commit=$(head -c 40 "$tmp/$top/.git/modules/vendor/llama.cpp/HEAD")
printf '%s\nllama.cpp %s\n' "$stamp" "$commit" >"$tmp/$top/vendor/llama.cpp/ggml/QKBENCH_SOURCE"
rm -rf "$dest"
mv "$tmp/$top/vendor/llama.cpp/ggml" "$dest"
echo "$PWD/$dest"
