"""``python -m cimcodec``: the command line (:func:`cimcodec.sim.cli.main`)."""

import sys

from cimcodec.sim.cli import main

sys.exit(main())
