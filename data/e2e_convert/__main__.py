"""python -m e2e_convert (data/e2e-convert runs it in the project's Python environment)"""
import sys

from e2e_convert.cli import main

if __name__ == "__main__":
    sys.exit(main())
