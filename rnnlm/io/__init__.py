"""Files: the model-file format (save, load, validation), safe output files, safetensors
exchange and the dataset download.
"""
