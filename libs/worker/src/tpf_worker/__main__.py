"""Entry point: `python -m tpf_worker serve ...` (see tpf_worker.serve)."""

import sys

from tpf_worker.serve import main

if __name__ == "__main__":
    sys.exit(main())
