"""python -m e2e_convert (data/e2e-convert runs it in the project's Python environment)"""
import os
import sys

from e2e_convert.cli import main
from e2e_convert.output import CLOSE_FAILED

if __name__ == "__main__":
    code = main()
    if CLOSE_FAILED:  # HDF5's exit handler would crash on the file it could not close
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
