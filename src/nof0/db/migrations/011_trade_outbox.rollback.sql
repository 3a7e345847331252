DROP TABLE IF EXISTS trade_outbox_published;
DROP TABLE IF EXISTS trade_outbox;
