"""`python -m rnnlm.course build`: the same as `rnnlm course build` (an entry point, so it sits with the CLI)."""

import sys

from rnnlm.cli import main

sys.exit(main(["course", *sys.argv[1:]]))
