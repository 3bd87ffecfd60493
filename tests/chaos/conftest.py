"""The chaos driver's pure parts (scripts/chaos/audit.py, report.py) are imported as
scripts.chaos.*: the repository root must be importable however pytest was started."""

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
