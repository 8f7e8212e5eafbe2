"""`python -m cnnviz …` is `cnnviz …`, for environments whose scripts folder is not on PATH."""

import sys

from cnnviz.cli import main

sys.exit(main())
