"""From text to index arrays: tokenizing, the vocabulary, the corpus reader, the PTB/SST tree
reader, the word blocklist and the detokenizer (tokens back to text). Imports only `nn` (argument checks) and the foundations.
"""
