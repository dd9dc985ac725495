import sys

from link.receiver.main import main

sys.exit(main())
