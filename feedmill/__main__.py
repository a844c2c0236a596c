import sys

from feedmill.cli import main

sys.exit(main())
