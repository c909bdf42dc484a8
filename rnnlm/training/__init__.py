"""Training loops: the sentence-level loop with its learning-rate rules, stream (truncated
BPTT over a token stream) training, and tree training.
"""
