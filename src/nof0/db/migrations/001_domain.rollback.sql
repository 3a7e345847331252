-- Rollback of 001_domain: drops every table it created.
DROP TABLE IF EXISTS job_runs, ingest_dead_letters, sim_balances, sim_orders, market_asset_ctx,
    market_assets, decision_cycles, conversation_messages, conversations, model_analytics,
    trader_state, fills, trades, positions, account_equity_snapshots, accounts, price_latest,
    price_ticks, symbols, models;
