"""The `rnnlm` command, the only code in the package that prints or exits.

One module per command or command group (`train`, `evaluate` with `gradcheck`, `generate`,
`files`: export/import/download/info, `course`: course build/check, `trees`), each with its
parser (`add_*_parser`) beside its handler (`cmd_*`); `main` builds the parser and runs a
command; `common`, `outputs`, `progress` and `examples` are what the commands share.

Every `RnnlmError` (and any OSError about a file) becomes one line `rnnlm: error: <message>` on
stderr and exit code 2, with no traceback; so do argparse's usage errors. Ctrl-C (or SIGTERM)
during training keeps the last finished epoch's checkpoint and exits 130. A closed stdout ends
output quietly (`train` keeps training). Outputs are checked against the inputs and locked
before a command runs (`outputs.guarded_outputs`). Option names carry the field names of the
config dataclasses (`--hidden` sets `ModelConfig.hidden_size`), and every default comes from
those dataclasses (or `GenerateConfig`): nothing here repeats a default value.
"""

from rnnlm.cli.main import main

__all__ = ["main"]
