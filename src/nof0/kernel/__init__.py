"""The shared kernel: what every domain and producer imports and that imports none of them.

Event types and their decoding (``events``, ``decode``, ``shape``, ``lines``), the stage contract
between the ingestion service and the domain pipelines (``stage``), ingest reports and the injected
clock. Domains (``prices/``, ``trades/``, ...) sit above it, ``ingest.service.IngestService`` above
them, and the engine above that.
"""
