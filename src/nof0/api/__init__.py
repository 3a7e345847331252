"""The arena API (nof1 wire format, the design's ``nof1-api.md``): Redis first, Postgres on a miss.

``app.create_app(rt)`` builds the Starlette application; ``read_path`` is design 3.3/3.4 applied to
responses (encoded payload cache, rebuild lock, fail-open on Redis); ``sources`` chooses per endpoint
between the nof1 snapshot files and the database (design 5, cutover by feature flag).
"""
