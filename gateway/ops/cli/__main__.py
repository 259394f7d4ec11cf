"""`python -m gateway.ops.cli ...`, as the `gateway` script."""
from gateway.ops.cli.main import main

main()
