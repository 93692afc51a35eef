"""`python -m shopgen ...`: the same CLI as the `shopgen` console script."""

from shopgen.cli.main import main

main(prog_name="shopgen")
