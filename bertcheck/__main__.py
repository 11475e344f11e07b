import sys

from bertcheck.cli import main

sys.exit(main())
