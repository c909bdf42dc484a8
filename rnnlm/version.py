"""The package version: one place, read by pyproject.toml, the CLI's --version and every file rnnlm writes."""

__version__ = "0.1.0"
