"""``python -m ramlico.data.check CONFIG...``: the data checks as a command (see the package)."""

import sys

from ramlico.data.check import main

if __name__ == "__main__":
    sys.exit(main())
