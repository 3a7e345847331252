"""SQL of traders: ``models``, ``accounts`` and ``trader_state`` (design 2.2). Never commits.

Upserts are split into "insert what is new" and "update what differs", so a replayed event writes
nothing and the caller learns which rows really changed (the ingest report's duplicates).
"""

from __future__ import annotations

from typing import Any, Sequence

from psycopg import AsyncConnection

from nof0.db.arrays import jsonb

__all__ = [
    "list_known_models", "upsert_models", "upsert_accounts", "upsert_trader_states", "list_trader_states",
    "get_starting_capitals",
]


async def list_known_models(conn: AsyncConnection, ids: Sequence[str]) -> set[str]:
    cur = await conn.execute("SELECT id FROM models WHERE id = ANY(%b::text[])", (list(ids),))
    return {r["id"] for r in await cur.fetchall()}


async def upsert_models(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> set[str]:
    """rows: id, display_name, trader_config (None keeps the stored value; a new model without a
    display name is named by its id). Returns changed ids."""
    ids = [r["id"] for r in rows]
    names = [r["display_name"] for r in rows]
    configs = [jsonb(r["trader_config"]) for r in rows]
    cur = await conn.execute(
        """
        INSERT INTO models (id, display_name, trader_config)
        SELECT id, coalesce(name, id), coalesce(cfg, '{}'::jsonb)
          FROM unnest(%b::text[], %b::text[], %b::jsonb[]) AS v(id, name, cfg)
        ON CONFLICT (id) DO NOTHING
        RETURNING id
        """,
        (ids, names, configs),
    )
    changed = {r["id"] for r in await cur.fetchall()}
    cur = await conn.execute(
        """
        UPDATE models m
           SET display_name = coalesce(v.name, m.display_name), trader_config = coalesce(v.cfg, m.trader_config)
          FROM unnest(%b::text[], %b::text[], %b::jsonb[]) AS v(id, name, cfg)
         WHERE m.id = v.id
           AND (m.display_name, m.trader_config)
               IS DISTINCT FROM (coalesce(v.name, m.display_name), coalesce(v.cfg, m.trader_config))
        RETURNING m.id
        """,
        (ids, names, configs),
    )
    return changed | {r["id"] for r in await cur.fetchall()}


async def upsert_accounts(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> set[str]:
    """rows: model_id, starting_capital_usd, inception_at, inception_id, default_inception_id.

    A None keeps the stored value; a new account gets 10000 USD and the deterministic default id.
    """
    ids = [r["model_id"] for r in rows]
    caps = [r["starting_capital_usd"] for r in rows]
    ats = [r["inception_at"] for r in rows]
    uuids = [r["inception_id"] for r in rows]
    defaults = [r["default_inception_id"] for r in rows]
    cur = await conn.execute(
        """
        INSERT INTO accounts (model_id, starting_capital_usd, inception_at, inception_id)
        SELECT id, coalesce(cap, 10000), at, coalesce(uid, dflt)
          FROM unnest(%b::text[], %b::float8[], %b::timestamptz[], %b::uuid[], %b::uuid[]) AS v(id, cap, at, uid, dflt)
        ON CONFLICT (model_id) DO NOTHING
        RETURNING model_id
        """,
        (ids, caps, ats, uuids, defaults),
    )
    changed = {r["model_id"] for r in await cur.fetchall()}
    cur = await conn.execute(
        """
        UPDATE accounts a
           SET starting_capital_usd = coalesce(v.cap, a.starting_capital_usd),
               inception_at = coalesce(v.at, a.inception_at),
               inception_id = coalesce(v.uid, a.inception_id),
               updated_at = now()
          FROM unnest(%b::text[], %b::float8[], %b::timestamptz[], %b::uuid[]) AS v(id, cap, at, uid)
         WHERE a.model_id = v.id
           AND (a.starting_capital_usd, a.inception_at, a.inception_id)
               IS DISTINCT FROM (coalesce(v.cap, a.starting_capital_usd), coalesce(v.at, a.inception_at),
                                 coalesce(v.uid, a.inception_id))
        RETURNING a.model_id
        """,
        (ids, caps, ats, uuids),
    )
    return changed | {r["model_id"] for r in await cur.fetchall()}


async def get_starting_capitals(conn: AsyncConnection, model_ids: Sequence[str]) -> dict[str, float]:
    cur = await conn.execute(
        "SELECT model_id, starting_capital_usd FROM accounts WHERE model_id = ANY(%b::text[])", (list(model_ids),)
    )
    return {r["model_id"]: r["starting_capital_usd"] for r in await cur.fetchall()}


_STATE_FIELDS = ("allocation_pct", "cooldown", "risk_guards", "last_decision_at", "pause_until")

_STATE_VALUES = """unnest(%(id)b::text[], %(ex)b::text[], %(mk)b::text[], %(alloc)b::float8[], %(cool)b::jsonb[],
           %(risk)b::jsonb[], %(last)b::timestamptz[], %(pause)b::timestamptz[],
           %(has_allocation_pct)b::bool[], %(has_cooldown)b::bool[], %(has_risk_guards)b::bool[],
           %(has_last_decision_at)b::bool[], %(has_pause_until)b::bool[])
       AS v(id, ex, mk, alloc, cool, risk, last, pause, h_alloc, h_cool, h_risk, h_last, h_pause)"""

# The value each column takes from an event: given columns replace, absent ones keep the stored value.
_STATE_NEW = {
    "exchange_provider": "v.ex",
    "market_provider": "v.mk",
    "allocation_pct": "CASE WHEN v.h_alloc THEN v.alloc ELSE t.allocation_pct END",
    "cooldown": "CASE WHEN v.h_cool THEN coalesce(v.cool, '{}'::jsonb) ELSE t.cooldown END",
    "risk_guards": "CASE WHEN v.h_risk THEN coalesce(v.risk, '{}'::jsonb) ELSE t.risk_guards END",
    "last_decision_at": "CASE WHEN v.h_last THEN v.last ELSE t.last_decision_at END",
    "pause_until": "CASE WHEN v.h_pause THEN v.pause ELSE t.pause_until END",
}
_INSERT_STATES = (
    "INSERT INTO trader_state (trader_id, exchange_provider, market_provider, allocation_pct, cooldown,"
    " risk_guards, last_decision_at, pause_until)"
    " SELECT id, ex, mk, alloc, coalesce(cool, '{}'::jsonb), coalesce(risk, '{}'::jsonb), last, pause"
    " FROM " + _STATE_VALUES + " ON CONFLICT (trader_id) DO NOTHING RETURNING trader_id"
)
_UPDATE_STATES = (
    "UPDATE trader_state t SET " + ", ".join(f"{c} = {e}" for c, e in _STATE_NEW.items()) + ", updated_at = now()"
    " FROM " + _STATE_VALUES + " WHERE t.trader_id = v.id AND ("
    + ", ".join(f"t.{c}" for c in _STATE_NEW) + ") IS DISTINCT FROM (" + ", ".join(_STATE_NEW.values()) + ")"
    " RETURNING t.trader_id"
)


async def upsert_trader_states(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> set[str]:
    """rows: trader_id, exchange_provider, market_provider, and for each optional column a value and a
    ``has_<column>`` flag (absent columns keep the stored value). Returns changed trader ids."""
    params = {
        "id": [r["trader_id"] for r in rows],
        "ex": [r["exchange_provider"] for r in rows],
        "mk": [r["market_provider"] for r in rows],
        "alloc": [r["allocation_pct"] for r in rows],
        "cool": [jsonb(r["cooldown"]) for r in rows],
        "risk": [jsonb(r["risk_guards"]) for r in rows],
        "last": [r["last_decision_at"] for r in rows],
        "pause": [r["pause_until"] for r in rows],
        **{f"has_{f}": [r[f"has_{f}"] for r in rows] for f in _STATE_FIELDS},
    }
    cur = await conn.execute(_INSERT_STATES, params)
    changed = {r["trader_id"] for r in await cur.fetchall()}
    cur = await conn.execute(_UPDATE_STATES, params)
    return changed | {r["trader_id"] for r in await cur.fetchall()}


async def list_trader_states(conn: AsyncConnection, trader_ids: Sequence[str]) -> list[dict[str, Any]]:
    cur = await conn.execute(
        """
        SELECT trader_id, exchange_provider, market_provider, allocation_pct, cooldown, risk_guards,
               last_decision_at, pause_until
          FROM trader_state WHERE trader_id = ANY(%b::text[]) ORDER BY trader_id
        """,
        (list(trader_ids),),
    )
    return await cur.fetchall()


async def advance_fences(conn: AsyncConnection, tokens: dict[str, int]) -> dict[str, int]:
    """Raise each trader's stored fencing token to the given one (never lower it), under the row lock that
    orders concurrent writers; returns the token stored for each trader afterwards."""
    ids = sorted(tokens)
    cur = await conn.execute(
        """
        INSERT INTO trader_fencing AS f (trader_id, token)
        SELECT * FROM unnest(%(ids)s::text[], %(tokens)s::bigint[])
        ON CONFLICT (trader_id) DO UPDATE SET token = GREATEST(f.token, EXCLUDED.token),
            updated_at = CASE WHEN EXCLUDED.token > f.token THEN now() ELSE f.updated_at END
        RETURNING trader_id, token
        """,
        {"ids": ids, "tokens": [tokens[i] for i in ids]},
    )
    return {r["trader_id"]: r["token"] for r in await cur.fetchall()}
