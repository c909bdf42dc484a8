"""`python -m rnnlm ...`: the same as the `rnnlm` command."""

from rnnlm.cli import main

raise SystemExit(main())
