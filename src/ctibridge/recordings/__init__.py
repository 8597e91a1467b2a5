"""Call recordings: fetchers per phone system, stores, and the ``recordings`` table."""
