"""``python -m vtape``: the ``vtape`` command.

The one place vtape imports a command line: the import contracts in pyproject.toml allow exactly
this import and nothing else in vtape may import tapefs_tools.
"""

from tapefs_tools.vtape_cli import main

main(prog_name="vtape")
