"""Market providers (etc/market.yaml): prices, candles and asset metadata from a venue, a seeded
simulation or stored ticks, behind one interface (``provider.MarketProvider``)."""
