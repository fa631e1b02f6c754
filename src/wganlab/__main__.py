"""`python -m wganlab`: the same command as `wganlab`."""

import sys

from .cli import main

sys.exit(main())
