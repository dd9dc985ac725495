import sys

from link.live.hub import main

sys.exit(main())
