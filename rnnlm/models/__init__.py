"""The models: the tutorial's `RNNNumpy` (the float64 reading copy), `FastRNN` (the same model,
batched, float32), `LanguageModel` (embedding, stacked cells, softmax), the Tree-LSTM family
with its executors, and text generation from a trained model.
"""
