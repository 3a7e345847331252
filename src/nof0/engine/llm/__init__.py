"""The LLM client (engine.md "LLM client"): OpenAI-compatible chat completions with timeouts,
retries and a record of every call; the daily budgets computed from those records."""
