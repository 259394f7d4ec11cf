"""The command line, one module per command group; main.py builds the
`gateway` app from them (`python -m gateway.ops.cli` runs it too)."""
