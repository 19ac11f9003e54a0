"""``python -m papertide`` runs the command line."""

from papertide.cli import main

main()
