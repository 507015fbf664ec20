import sys

from .run import main

if __name__ == "__main__":  # not again in the spawned load generator processes
    sys.exit(main())
