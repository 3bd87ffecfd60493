import sys

from scripts.chaos.driver import main

sys.exit(main())
