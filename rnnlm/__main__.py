"""`python -m rnnlm ...`: the same as the `rnnlm` command."""

from .cli import main

raise SystemExit(main())
