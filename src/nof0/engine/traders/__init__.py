"""The traders (engine.md "The traders"): the decision contract, prompts and context, the executor
and its guards, the manager loop and the journal."""
