"""The third-party packages the tools in plot/ import, checked before they are imported: a
missing (or broken) one ends the tool with one line naming it and how to install it, exit 2,
whichever python3 runs the tool (Debian's packages serve /usr/bin/python3 only; another
interpreter, a pyenv or a venv without system site-packages, needs pip). Standard library only.
compare.py needs scipy, plot.py and generations.py --chart matplotlib; pool.py, contracts.py,
index.py, tokens.py and generations.py's tables need only the standard library
(tests/test_compare.sh)."""
import importlib
import os
import sys

DEBIAN = {"scipy": "python3-scipy", "matplotlib": "python3-matplotlib", "numpy": "python3-numpy"}


def need(*modules):
    """Imports each module (e.g. "scipy.stats") or exits 2 with one line on stderr."""
    tool = os.path.basename(sys.argv[0]) or "plot"
    for module in modules:
        try:
            importlib.import_module(module)
        except Exception as e:  # noqa: BLE001  ImportError, or a broken install's own error
            top = module.split(".")[0]
            reason = f"unusable ({type(e).__name__}: {e})"
            if isinstance(e, ModuleNotFoundError) and e.name:
                top, reason = e.name.split(".")[0], "missing"  # it, or a package it needs
            deb = DEBIAN.get(top, f"python3-{top}")
            debian = os.path.realpath(sys.executable) == os.path.realpath("/usr/bin/python3")
            run = "" if debian else " and run the tool with /usr/bin/python3"
            print(f"{tool}: the Python package '{top}' is {reason} in {sys.executable}; install "
                  f"it with `apt-get install {deb}` (Debian; or `bash bench/setup.sh`){run}, or "
                  f"`{sys.executable} -m pip install {top}`", file=sys.stderr)
            sys.exit(2)
