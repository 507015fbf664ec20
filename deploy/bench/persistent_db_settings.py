"""An experiment, not a recommendation of this module: youthhub's settings with persistent
database connections (CONN_MAX_AGE), to measure what opening a PostgreSQL connection for
every database call costs. `python -m deploy.bench --youthhub-settings
deploy.bench.persistent_db_settings`."""

from youthhub.settings import *  # noqa: F403
from youthhub.settings import DATABASES

DATABASES["default"]["CONN_MAX_AGE"] = None  # keep it for the life of the thread
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
