"""`python -m sidecar` runs the flag-sidecar command."""

import sys

from sidecar.cli import main

sys.exit(main())
