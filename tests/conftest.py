import os

# Ray must not try to phone home from tests (no internet here, and none wanted in CI).
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
