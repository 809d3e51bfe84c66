import sys

from estreamer.cli import main

sys.exit(main())
