"""``python -m tapefs``: the ``tapefs`` command.

The one place the library imports a command line: the import contracts in pyproject.toml allow
exactly this import and nothing else in tapefs may import tapefs_tools.
"""

from tapefs_tools.tapefs_cli import main

main(prog_name="tapefs")
