"""From text to index arrays: tokenizing, the vocabulary, the corpus reader, the PTB/SST tree
reader and the word blocklist. Imports only `nn` (argument checks) and the foundations.
"""
