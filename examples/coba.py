"""The COBA network of Brette et al. (2007): 4000 LIF neurons (3200 E, 800 I), p = 0.02, 1 s.

See examples/brette2007.py for the network and its parameters. Prints the
mean firing rate and the mean CV of the interspike intervals; with
``--brian2`` also those of the same network written in plain Brian2.

Run: python examples/coba.py [--brian2]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from brette2007 import main  # noqa: E402

if __name__ == "__main__":
    main("coba", brian2="--brian2" in sys.argv[1:])
