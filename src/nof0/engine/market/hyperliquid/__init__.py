"""The Hyperliquid market provider: REST ``/info`` (``info.py``), the WebSocket feed (``ws.py``), strict
parsing of what the venue sends (``parse.py``) and the provider joining them (``provider.py``)."""
