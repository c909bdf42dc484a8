"""Numerics and layers: softmax and cross-entropy, argument checks, the RNN/GRU/LSTM cells as
forward/backward pairs, the output layers, the one recurrence over packed batches, optimizers and
gradient checking. The bottom layer: it imports nothing else from rnnlm but `errors` and `config`.
"""
