"""Trade, signal and invocation analytics of one model, in nof1's ModelAnalytics shape.

This module holds the arithmetic behind ``GET /api/analytics`` (the design's ``nof1-api.md``,
"ModelAnalytics"): it turns a model's closed trades, decisions, invocation times and position history
into the seven breakdown tables. It is pure: no database, no Redis, no clock (the caller passes
``now_s``), so the analytics batch job and the tests run the same code.

Definitions, checked against nof1's own numbers for grok-4 (``fixtures/nof1-2025-10-26``):

* Standard deviations are **sample** standard deviations (n - 1 denominator, as ``statistics.stdev``).
  With fewer than two samples a std is 0.
* Means are correctly rounded sums (``math.fsum``) divided by the count; medians use ``statistics.median``
  (median of an even count is the mean of the two middle values). An empty sample gives 0.
* Holding period = (exit_time_s - entry_time_s) / 60, in **minutes**.
* Notional = |quantity| x entry_price, in dollars (entry notional, not exit).
* Percentages are on a 0-100 scale (``win_rate`` 20 means 20 %).
* Every field is always present; a field that cannot be derived (no input) is 0.

``docs/analytics.md`` documents each field, its edge cases and what is still unverified.
"""

from __future__ import annotations

import math
import operator
import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import msgspec

Side = Literal["long", "short"]
Signal = Literal["long", "short", "close", "hold"]
PositionState = Literal["long", "short", "flat"]

_SIDES = ("long", "short")
_SIGNALS = ("long", "short", "close", "hold")
_POSITION_STATES = ("long", "short", "flat")


# --------------------------------------------------------------------------------------------- inputs


class TradeFacts(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """The facts of one closed round-trip trade that the analytics need."""

    id: str  # the trade document id (nof1 ``id``), reported as last_trade_doc_id
    model_id: str
    symbol: str
    side: Side
    quantity: float  # signed: negative for shorts
    entry_price: float
    exit_price: float
    entry_time_s: float
    exit_time_s: float
    realized_gross_pnl: float  # dollars, before fees
    realized_net_pnl: float  # dollars, after fees (nof1: entry_closed_pnl + exit_closed_pnl)
    total_commission_dollars: float
    entry_commission_dollars: float
    exit_commission_dollars: float
    leverage: float
    confidence: float
    exit_plan: dict[str, Any] = msgspec.field(default_factory=dict)

    @property
    def notional(self) -> float:
        """Entry notional in dollars: |quantity| x entry_price."""
        return abs(self.quantity) * self.entry_price

    @property
    def holding_period_mins(self) -> float:
        return (self.exit_time_s - self.entry_time_s) / 60


class Decision(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One signal of one decision cycle (nof1 counts one signal per coin per invocation)."""

    signal: Signal
    confidence: float | None  # 0-1 as the model stated it; None when it gave none
    leverage: float  # leverage recorded with the signal
    timestamp_s: float
    # Leverage the model asked for in its conversation output, when the pipeline has it. Only entry
    # signals (long/short) feed avg/median_convo_leverage; see _overall_trades_overview_table.
    convo_leverage: float | None = None


class PositionInterval(msgspec.Struct, frozen=True, kw_only=True):
    """A span of time during which one symbol's position was long, short or flat."""

    symbol: str
    state: PositionState
    start_s: float
    end_s: float


class ConvoRef(msgspec.Struct, frozen=True, kw_only=True):
    """The model's most recent conversation document."""

    timestamp_s: float
    doc_id: str


class GroupStats(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Statistics of one group of trades (winners, losers, longs, shorts); 0 for an empty group."""

    count: int = 0
    avg_net_pnl: float = 0.0
    std_net_pnl: float = 0.0
    avg_notional: float = 0.0
    std_notional: float = 0.0
    avg_holding_period: float = 0.0
    std_holding_period: float = 0.0


class TradeStats(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Everything the four trade tables are made of: counts, sums, means, sample stds and medians.

    :func:`trade_stats` computes it from :class:`TradeFacts`; the analytics job has Postgres compute
    the same numbers (``repository.list_trade_cells``: one aggregate pass into :class:`TradeCell`
    rows, combined by :func:`stats_of_cells`; ``list_trade_order_stats``: medians, last trade), so both ways share the tables' definitions below. Means and stds of an empty sample are 0, a std of fewer than two is 0.
    """

    total_trades: int = 0
    sum_gross_pnl: float = 0.0
    avg_gross_pnl: float = 0.0
    std_gross_pnl: float = 0.0
    sum_net_pnl: float = 0.0
    avg_net_pnl: float = 0.0
    std_net_pnl: float = 0.0
    max_net_pnl: float = 0.0
    min_net_pnl: float = 0.0
    sum_fees: float = 0.0
    avg_fees: float = 0.0
    std_fees: float = 0.0
    avg_holding_period: float = 0.0
    median_holding_period: float = 0.0
    std_holding_period: float = 0.0
    avg_notional: float = 0.0
    median_notional: float = 0.0
    std_notional: float = 0.0
    avg_stop_loss_distance_pct: float = 0.0
    avg_take_profit_distance_pct: float = 0.0
    winners: GroupStats = GroupStats()
    losers: GroupStats = GroupStats()
    longs: GroupStats = GroupStats()
    shorts: GroupStats = GroupStats()
    last_trade_exit_time_s: float = 0.0
    last_trade_id: str | None = None


class Moments(msgspec.Struct, frozen=True, gc=False):
    """Count, mean and sample std of one sample; the mean of none and a std of fewer than two are 0."""

    n: int
    mean: float
    std: float

    @property
    def total(self) -> float:
        return self.mean * self.n


def combine_moments(parts: Sequence[Moments]) -> Moments:
    """The moments of the union of disjoint samples from theirs (Chan et al.'s pairwise update:
    M2 = sum of each part's M2 + n_i x (mean_i - mean)^2), a few ulps from the direct computation."""
    n = sum(p.n for p in parts)
    if n == 0:
        return Moments(0, 0.0, 0.0)
    if len(parts) == 1:
        return parts[0]
    mean = math.fsum(p.total for p in parts) / n
    m2 = math.fsum(p.std * p.std * (p.n - 1) + p.n * (p.mean - mean) ** 2 for p in parts if p.n)
    return Moments(n, mean, math.sqrt(max(m2, 0.0) / (n - 1)) if n > 1 else 0.0)


class TradeCell(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """The trades of one model that share a side and whether they won, summarised (one row of
    ``repository.list_trade_cells``' aggregate pass); a model's statistics combine its (up to) 4 cells."""

    won: bool  # net pnl > 0
    side: Side
    gross: Moments
    net: Moments
    fees: Moments
    notional: Moments
    holding: Moments
    max_net: float
    min_net: float
    stop_loss: Moments  # the distances in percent of the trades whose plan has that level
    take_profit: Moments


def _group_of(cells: Sequence[TradeCell]) -> GroupStats:
    net, notional, holding = (combine_moments([getattr(c, f) for c in cells]) for f in ("net", "notional", "holding"))
    return GroupStats(count=net.n, avg_net_pnl=net.mean, std_net_pnl=net.std, avg_notional=notional.mean,
                      std_notional=notional.std, avg_holding_period=holding.mean, std_holding_period=holding.std)


def stats_of_cells(cells: Sequence[TradeCell], *, median_holding: float, median_notional: float,
                   last_exit_time_s: float, last_trade_id: str | None) -> TradeStats:
    """One model's :class:`TradeStats` from its cells and the statistics cells cannot give (medians,
    the last trade), as Postgres computed them."""
    gross, net, fees, notional, holding, stop_loss, take_profit = (
        combine_moments([getattr(c, f) for c in cells])
        for f in ("gross", "net", "fees", "notional", "holding", "stop_loss", "take_profit"))
    return TradeStats(
        total_trades=net.n,
        sum_gross_pnl=gross.total, avg_gross_pnl=gross.mean, std_gross_pnl=gross.std,
        sum_net_pnl=net.total, avg_net_pnl=net.mean, std_net_pnl=net.std,
        max_net_pnl=max((c.max_net for c in cells), default=0.0), min_net_pnl=min((c.min_net for c in cells), default=0.0),
        sum_fees=fees.total, avg_fees=fees.mean, std_fees=fees.std,
        avg_holding_period=holding.mean, median_holding_period=median_holding, std_holding_period=holding.std,
        avg_notional=notional.mean, median_notional=median_notional, std_notional=notional.std,
        avg_stop_loss_distance_pct=stop_loss.mean, avg_take_profit_distance_pct=take_profit.mean,
        winners=_group_of([c for c in cells if c.won]), losers=_group_of([c for c in cells if not c.won]),
        longs=_group_of([c for c in cells if c.side == "long"]), shorts=_group_of([c for c in cells if c.side == "short"]),
        last_trade_exit_time_s=last_exit_time_s, last_trade_id=last_trade_id,
    )


def _field(trade: Mapping[str, Any], name: str) -> Any:
    try:
        return trade[name]
    except KeyError:
        raise ValueError(f"trade {trade.get('id', '?')!r}: missing field {name!r}") from None


def _number(trade: Mapping[str, Any], name: str, *, required: bool = True) -> float:
    """A finite number field; an optional field that is absent or null reads as 0."""
    value = trade.get(name)
    if value is None:
        if required:
            raise ValueError(f"trade {trade.get('id', '?')!r}: missing field {name!r}")
        return 0.0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"trade {trade.get('id', '?')!r}: field {name!r} is not a finite number: {value!r}")
    return float(value)


def trade_facts_from_nof1(trade: Mapping[str, Any]) -> TradeFacts:
    """Validate one trade of nof1's ``GET /api/trades`` payload and keep what the analytics need."""
    side = _field(trade, "side")
    if side not in _SIDES:
        raise ValueError(f"trade {trade.get('id', '?')!r}: field 'side' must be long or short: {side!r}")
    entry_time_s = _number(trade, "entry_time")
    exit_time_s = _number(trade, "exit_time")
    if exit_time_s < entry_time_s:
        raise ValueError(
            f"trade {trade.get('id', '?')!r}: exit_time {exit_time_s!r} is before entry_time {entry_time_s!r}"
        )
    exit_plan = trade.get("exit_plan") or {}
    if not isinstance(exit_plan, dict):
        raise ValueError(f"trade {trade.get('id', '?')!r}: field 'exit_plan' is not an object: {exit_plan!r}")
    return TradeFacts(
        id=str(_field(trade, "id")),
        model_id=str(_field(trade, "model_id")),
        symbol=str(_field(trade, "symbol")),
        side=side,
        quantity=_number(trade, "quantity"),
        entry_price=_number(trade, "entry_price"),
        exit_price=_number(trade, "exit_price"),
        entry_time_s=entry_time_s,
        exit_time_s=exit_time_s,
        realized_gross_pnl=_number(trade, "realized_gross_pnl"),
        realized_net_pnl=_number(trade, "realized_net_pnl"),
        total_commission_dollars=_number(trade, "total_commission_dollars"),
        entry_commission_dollars=_number(trade, "entry_commission_dollars", required=False),
        exit_commission_dollars=_number(trade, "exit_commission_dollars", required=False),
        leverage=_number(trade, "leverage", required=False),
        confidence=_number(trade, "confidence", required=False),
        exit_plan=dict(exit_plan),
    )


# ------------------------------------------------------------------------------------------ statistics


def _mean(values: Sequence[float]) -> float:
    # fsum is the correctly rounded sum, so the mean is off the exact one by at most the final division's
    # rounding (an ulp). statistics.mean would be exact to the last bit but sums in Fractions, ~50x slower:
    # the batch job computes ~40 statistics over every trade of every model.
    return math.fsum(values) / len(values) if values else 0.0


def _median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else 0.0


def _std(values: Sequence[float]) -> float:
    """Sample standard deviation (n - 1); 0 for fewer than two samples.

    Two passes with correctly rounded sums; the second term removes the rounding error of the mean
    (the "corrected two-pass" algorithm), so the result agrees with ``statistics.stdev`` to ~1e-15.
    """
    n = len(values)
    if n < 2:
        return 0.0
    mean = math.fsum(values) / n
    deviations = [x - mean for x in values]
    ss = math.fsum(map(operator.mul, deviations, deviations)) - math.fsum(deviations) ** 2 / n
    return math.sqrt(max(ss, 0.0) / (n - 1))


def _pct(part: float, whole: float) -> float:
    return part / whole * 100 if whole else 0.0


# ------------------------------------------------------------------------------------------- tables


def _group(group: Sequence[TradeFacts]) -> GroupStats:
    net = [t.realized_net_pnl for t in group]
    notional = [t.notional for t in group]
    holding = [t.holding_period_mins for t in group]
    return GroupStats(count=len(group), avg_net_pnl=_mean(net), std_net_pnl=_std(net),
                      avg_notional=_mean(notional), std_notional=_std(notional),
                      avg_holding_period=_mean(holding), std_holding_period=_std(holding))


def _exit_plan_distance_pct(trade: TradeFacts, key: str) -> float | None:
    level = trade.exit_plan.get(key)
    if isinstance(level, bool) or not isinstance(level, (int, float)):
        return None
    if not (math.isfinite(level) and level > 0 and trade.entry_price > 0):
        return None
    return abs(level - trade.entry_price) / trade.entry_price * 100


def trade_stats(trades: Sequence[TradeFacts]) -> TradeStats:
    """The statistics of a model's closed trades (the definitions; Postgres computes the same)."""
    gross = [t.realized_gross_pnl for t in trades]
    net = [t.realized_net_pnl for t in trades]
    fees = [t.total_commission_dollars for t in trades]
    holding = [t.holding_period_mins for t in trades]
    notional = [t.notional for t in trades]
    # Distance from entry to the planned stop / target, |level - entry| / entry x 100, averaged over the
    # trades whose exit plan has that level (nof1's trades carry empty exit plans: 0).
    planned = [t for t in trades if t.exit_plan]
    stop_loss = [d for t in planned if (d := _exit_plan_distance_pct(t, "stop_loss")) is not None]
    take_profit = [d for t in planned if (d := _exit_plan_distance_pct(t, "profit_target")) is not None]
    # The last exited trade; ties on exit time resolve to the greatest id so the choice is stable.
    last = max(trades, key=lambda t: (t.exit_time_s, t.id), default=None)
    return TradeStats(
        total_trades=len(trades),
        sum_gross_pnl=math.fsum(gross), avg_gross_pnl=_mean(gross), std_gross_pnl=_std(gross),
        sum_net_pnl=math.fsum(net), avg_net_pnl=_mean(net), std_net_pnl=_std(net),
        max_net_pnl=max(net, default=0.0), min_net_pnl=min(net, default=0.0),
        sum_fees=math.fsum(fees), avg_fees=_mean(fees), std_fees=_std(fees),
        avg_holding_period=_mean(holding), median_holding_period=_median(holding), std_holding_period=_std(holding),
        avg_notional=_mean(notional), median_notional=_median(notional), std_notional=_std(notional),
        avg_stop_loss_distance_pct=_mean(stop_loss), avg_take_profit_distance_pct=_mean(take_profit),
        # A winner has net pnl > 0 (after fees); every other trade, break-even included, is a loser, so
        # winners + losers = all trades.
        winners=_group([t for t in trades if t.realized_net_pnl > 0]),
        losers=_group([t for t in trades if not t.realized_net_pnl > 0]),
        longs=_group([t for t in trades if t.side == "long"]),
        shorts=_group([t for t in trades if t.side == "short"]),
        last_trade_exit_time_s=last.exit_time_s if last else 0.0,
        last_trade_id=last.id if last else None,
    )


def _fee_pnl_moves_breakdown_table(s: TradeStats) -> dict[str, float]:
    return {
        "avg_gross_pnl": s.avg_gross_pnl,
        "avg_net_pnl": s.avg_net_pnl,
        # Per-trade fee = total_commission_dollars (entry + exit fill commissions), in dollars.
        "avg_taker_fee": s.avg_fees,
        "biggest_net_gain": s.max_net_pnl,  # the largest net pnl, negative if every trade lost
        "biggest_net_loss": s.min_net_pnl,  # the smallest net pnl, positive if every trade won
        "overall_pnl_with_fees": s.sum_net_pnl,
        "overall_pnl_without_fees": s.sum_gross_pnl,
        "std_gross_pnl": s.std_gross_pnl,
        "std_net_pnl": s.std_net_pnl,
        # Sample std of the same per-trade fees. nof1's grok-4 value differs (see docs/analytics.md).
        "std_taker_fee": s.std_fees,
        # Fees as a percentage of the pnl after fees, 0 unless that pnl is positive (nof1-api.md, from
        # nof1's published analytics of its profitable models; grok-4's negative pnl shows only the 0).
        "total_fees_as_pct_of_pnl": _pct(s.sum_fees, s.sum_net_pnl) if s.sum_net_pnl > 0 else 0.0,
        "total_fees_paid": s.sum_fees,
    }


def _group_stats(prefix: str, g: GroupStats) -> dict[str, float]:
    return {
        f"avg_{prefix}_net_pnl": g.avg_net_pnl,
        f"std_{prefix}_net_pnl": g.std_net_pnl,
        f"avg_{prefix}_notional": g.avg_notional,
        f"std_{prefix}_notional": g.std_notional,
        f"avg_{prefix}_holding_period": g.avg_holding_period,
        f"std_{prefix}_holding_period": g.std_holding_period,
    }


def _winners_losers_breakdown_table(s: TradeStats) -> dict[str, float]:
    table = _group_stats("winners", s.winners) | _group_stats("losers", s.losers)
    table["win_rate"] = _pct(s.winners.count, s.total_trades)  # 0-100
    return table


def _longs_shorts_breakdown_table(s: TradeStats) -> dict[str, float]:
    table: dict[str, float] = _group_stats("longs", s.longs) | _group_stats("shorts", s.shorts)
    table["num_long_trades"] = s.longs.count
    table["num_short_trades"] = s.shorts.count
    # Share of trades that were longs, as a fraction 0-1 (not a percentage, not longs/shorts): nof1
    # shows 0.5 for grok-4's 10 longs and 10 shorts. 0 without trades.
    table["long_short_trades_ratio"] = s.longs.count / s.total_trades if s.total_trades else 0.0
    return table


def _overall_trades_overview_table(s: TradeStats, decisions: Sequence[Decision]) -> dict[str, float]:
    # Leverage the model asked for in its entry decisions. nof1's grok-4 average is 345/26, and 26 is
    # exactly its number of long + short signals, so only entry signals count.
    convo_leverage = [
        d.convo_leverage for d in decisions if d.signal in _SIDES and d.convo_leverage is not None
    ]
    return {
        "total_trades": s.total_trades,
        "avg_holding_period_mins": s.avg_holding_period,
        "median_holding_period_mins": s.median_holding_period,
        "std_holding_period_mins": s.std_holding_period,
        "avg_size_of_trade_notional": s.avg_notional,
        "median_size_of_trade_notional": s.median_notional,
        "std_size_of_trade_notional": s.std_notional,
        # 0 for every model nof1 publishes: nof1 does not fill them (nof1-api.md), so neither do we.
        "avg_size_of_trade_portfolio_pct": 0.0,
        "std_size_of_trade_portfolio_pct": 0.0,
        "avg_stop_loss_distance_pct": s.avg_stop_loss_distance_pct,
        "avg_take_profit_distance_pct": s.avg_take_profit_distance_pct,
        "avg_convo_leverage": _mean(convo_leverage),
        "median_convo_leverage": _median(convo_leverage),
    }


def _signals_breakdown_table(
    decisions: Sequence[Decision], position_intervals: Sequence[PositionInterval]
) -> dict[str, float]:
    by_signal: dict[str, list[Decision]] = {s: [] for s in _SIGNALS}
    for d in decisions:
        by_signal[d.signal].append(d)
    total = len(decisions)
    # A signal without a stated confidence still counts as a signal, but not in confidence stats.
    confidence = [d.confidence for d in decisions if d.confidence is not None]
    leverage = [d.leverage for d in decisions]

    table: dict[str, float] = {"total_signals": total}
    for s in _SIGNALS:
        table[f"num_{s}_signals"] = len(by_signal[s])
        table[f"{s}_signal_pct"] = _pct(len(by_signal[s]), total)  # share of all signals, 0-100
    # Long signals per short signal (nof1: 16 long / 10 short = 1.6); 0 without short signals.
    num_short = len(by_signal["short"])
    table["long_short_ratio"] = len(by_signal["long"]) / num_short if num_short else 0.0

    table["avg_confidence"] = _mean(confidence)
    table["median_confidence"] = _median(confidence)
    table["std_confidence"] = _std(confidence)
    for s in _SIGNALS:
        values = [d.confidence for d in by_signal[s] if d.confidence is not None]
        table[f"avg_confidence_{s}"] = _mean(values)
        table[f"std_confidence_{s}"] = _std(values)

    table["avg_leverage"] = _mean(leverage)
    table["median_leverage"] = _median(leverage)
    table["std_leverage"] = _std(leverage)
    for s in _SIDES:  # nof1 breaks leverage down for entry signals only
        values = [d.leverage for d in by_signal[s]]
        table[f"avg_leverage_{s}"] = _mean(values)
        table[f"std_leverage_{s}"] = _std(values)

    # Minutes in each position state, summed over symbols ("combined"): with 6 coins tracked over the
    # invocation span, nof1's three totals add up to 6 x that span. Percentages are of that sum.
    minutes = {state: 0.0 for state in _POSITION_STATES}
    for interval in position_intervals:
        minutes[interval.state] += (interval.end_s - interval.start_s) / 60
    all_minutes = math.fsum(minutes.values())
    for state in _POSITION_STATES:
        table[f"mins_{state}_combined"] = minutes[state]
        table[f"pct_mins_{state}_combined"] = _pct(minutes[state], all_minutes)
    return table


def _invocation_breakdown_table(invocations_s: Sequence[float]) -> dict[str, float]:
    # Breaks are the gaps between consecutive invocations in time order, in minutes.
    times = sorted(invocations_s)
    breaks = [(b - a) / 60 for a, b in zip(times, times[1:])]
    return {
        "num_invocations": len(times),
        "min_invocation_break_mins": min(breaks, default=0.0),
        "max_invocation_break_mins": max(breaks, default=0.0),
        "avg_invocation_break_mins": _mean(breaks),
        "std_invocation_break_mins": _std(breaks),
    }


# ------------------------------------------------------------------------------------------- entry


def _validate(
    model_id: str,
    trades: Sequence[TradeFacts],
    decisions: Sequence[Decision],
    position_intervals: Sequence[PositionInterval],
) -> None:
    for t in trades:
        if t.model_id != model_id:
            raise ValueError(f"trade {t.id!r} belongs to model {t.model_id!r}, not {model_id!r}")
        if t.side not in _SIDES:
            raise ValueError(f"trade {t.id!r}: side must be long or short: {t.side!r}")
    for d in decisions:
        if d.signal not in _SIGNALS:
            raise ValueError(
                f"decision at {d.timestamp_s!r}: signal must be one of {_SIGNALS}: {d.signal!r}"
            )
    for p in position_intervals:
        if p.state not in _POSITION_STATES:
            raise ValueError(
                f"position interval of {p.symbol!r}: state must be one of {_POSITION_STATES}: {p.state!r}"
            )
        if p.end_s < p.start_s:
            raise ValueError(
                f"position interval of {p.symbol!r}: end {p.end_s!r} is before start {p.start_s!r}"
            )


def compute_model_analytics(
    model_id: str,
    trades: Iterable[TradeFacts] = (),
    *,
    stats: TradeStats | None = None,
    decisions: Iterable[Decision] = (),
    invocations_s: Iterable[float] = (),
    position_intervals: Iterable[PositionInterval] = (),
    last_convo: ConvoRef | None = None,
    now_s: float,
) -> dict[str, Any]:
    """Build one ModelAnalytics object (nof1's shape) from a model's closed trades and optional inputs.

    ``trades`` must all belong to ``model_id``; or, instead of them, ``stats``: their statistics as
    Postgres computed them (the analytics job). Optional inputs that are missing leave their fields at 0
    (doc ids at None); no field is ever dropped.
    """
    trades = list(trades)
    if stats is not None and trades:
        raise ValueError("give a model's trades or their stats, not both")
    decisions = list(decisions)
    position_intervals = list(position_intervals)
    _validate(model_id, trades, decisions, position_intervals)
    s = stats if stats is not None else trade_stats(trades)
    return {
        "id": model_id,
        "model_id": model_id,
        "updated_at": now_s,
        "last_trade_exit_time": s.last_trade_exit_time_s if s.last_trade_id is not None else 0,
        "last_trade_doc_id": s.last_trade_id,
        "last_convo_timestamp": last_convo.timestamp_s if last_convo else 0,
        "last_convo_doc_id": last_convo.doc_id if last_convo else None,
        "fee_pnl_moves_breakdown_table": _fee_pnl_moves_breakdown_table(s),
        "winners_losers_breakdown_table": _winners_losers_breakdown_table(s),
        "longs_shorts_breakdown_table": _longs_shorts_breakdown_table(s),
        "overall_trades_overview_table": _overall_trades_overview_table(s, decisions),
        "signals_breakdown_table": _signals_breakdown_table(decisions, position_intervals),
        "invocation_breakdown_table": _invocation_breakdown_table(list(invocations_s)),
    }
