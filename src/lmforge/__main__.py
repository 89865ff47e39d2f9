"""`python -m lmforge` (and `torchrun -m lmforge train ...`)."""

import sys

from lmforge.cli import main

sys.exit(main())
