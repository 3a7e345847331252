"""Model calls (engine.md "LLM client"): one ``llm_calls`` row per call of a trader's model, with its
latency, tokens, cost and outcome; the daily budgets are sums over these rows."""
