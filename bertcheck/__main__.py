import sys

from bertcheck.tools.cli import main

sys.exit(main())
