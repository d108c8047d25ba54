"""`python -m vault.cli`: the same as the `tvault` command."""

from vault.cli import main

main()
