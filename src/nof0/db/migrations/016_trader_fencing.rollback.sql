DROP TABLE IF EXISTS trader_fencing;
