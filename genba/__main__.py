"""``python -m genba``."""

import sys

from genba.cli import main

sys.exit(main())
