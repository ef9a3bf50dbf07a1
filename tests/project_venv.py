"""Runs a test or benchmark script in the converter's Python environment (pyarrow, h5py
from PyPI: launch/install-deps.sh makes it in .venv, or the folder E2E_VENV names).
Standard library only: it runs before pyarrow can be imported."""
import os
import sys

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV = os.environ.get("E2E_VENV", os.path.join(TOP, ".venv"))


def use_project_venv(script):
    """re-executes `script` (with the same arguments) in the environment unless this is it;
    without one, prints why (as a test failure) and exits 1"""
    if os.path.realpath(sys.prefix) == os.path.realpath(VENV):
        return
    py = os.path.join(VENV, "bin", "python")
    if not os.access(py, os.X_OK):
        print("FAILED: no Python environment at %s: run launch/install-deps.sh (it installs pyarrow and "
              "h5py there)" % VENV)
        sys.exit(1)
    os.execv(py, [py, os.path.abspath(script)] + sys.argv[1:])
