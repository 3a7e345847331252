"""Exchange providers (etc/exchange.yaml): where a trader's orders go, behind one interface
(``provider.Exchange``): the sim paper-trading engine and the Hyperliquid client."""
