import sys

from vaekit.cli.app import main

sys.exit(main())
