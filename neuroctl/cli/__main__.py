"""``python -m neuroctl.cli`` = the ``neuroctl`` command."""

from neuroctl.cli import main

main()
