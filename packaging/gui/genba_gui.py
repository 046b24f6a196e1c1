"""The operator app's desktop program: ``genba-gui --data SITE`` is ``genba gui --data SITE``.

``gui.cli`` is imported here and registered alone: ``genba.cli`` imports its command modules by
name, which PyInstaller does not follow, so the build follows the operator app and nothing else.
"""

import sys

import gui.cli
from genba.cli import main

if __name__ == "__main__":
    sys.exit(main(["gui", *sys.argv[1:]], command_modules=(gui.cli.__name__,)))
