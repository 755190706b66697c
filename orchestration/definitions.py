"""The Teal code location: only wiring. Assets, checks, jobs and resources live in defs/.

The settings are read from the environment once, here (ml/settings.py lists the variables);
importing this module writes no environment variable and starts no process.
"""

from ml.settings import Settings
from orchestration.defs import build_definitions

defs = build_definitions(Settings.from_env())
