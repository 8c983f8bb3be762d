"""`python -m pfsync` runs the command line."""

import sys

from pfsync.cli import main

sys.exit(main())
