"""How a count is worded in a message: "1 epoch", "3 epochs", "2 batches", in one place.

A foundation, so every layer that writes a message (argument checks, the corpus report, the
model-file summary, the command line) words its counts the same way.
"""


def counted(n, noun, plural=None, *, grouped=False):
    """ "1 epoch", "3 epochs", "2 batches": `n` with its noun, singular for exactly one.

    `plural` is the noun's plural where adding "s" is wrong ("batches", "entries"); `grouped`
    writes `n` with thousands separators ("1,234 sentences").
    """
    number = f"{n:,}" if grouped else f"{n}"
    return f"{number} {noun if n == 1 else (plural or noun + 's')}"
