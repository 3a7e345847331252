"""The arena engine (``shared/design/engine.md``): what produces the data.

``market/`` (feeds: hyperliquid, sim, replay), ``exchange/`` (sim paper trading, hyperliquid),
the traders (LLM client, executor, manager, journal). The engine sits on top of the platform: every
fact it produces reaches Postgres and Redis through ``nof0.ingest.service.IngestService``; it never
writes SQL or Redis keys of the domains itself.
"""
