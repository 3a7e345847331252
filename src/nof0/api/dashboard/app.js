// The arena dashboard. Reads only the public API (docs/api.md): loads every panel, then listens to
// /api/stream (Server-Sent Events) and reloads the panels a committed change affects; while the
// stream is unavailable it polls. API strings reach the page only as text (dom.js).
import { el, num, money, pct, plain, price, quantity, tone, when, relative, fillRows } from "./dom.js";
import { EquityChart } from "./chart.js";

const ENDPOINTS = {
  prices: "/api/crypto-prices",
  leaderboard: "/api/leaderboard",
  since: "/api/since-inception-values",
  accounts: "/api/account-totals",
  positions: "/api/positions",
  trades: "/api/trades",
  conversations: "/api/conversations",
  traders: "/api/traders",
};

// What each kind of committed change (the stream's ``kind``) makes stale.
const AFFECTS = {
  price_tick: ["prices"],
  market_meta: [],
  trade: ["trades", "positions", "accounts"],
  fill: ["trades", "positions", "accounts"],
  position: ["positions"],
  position_close: ["positions", "trades", "accounts"],
  equity_snapshot: ["accounts"],
  decision_cycle: ["conversations", "traders", "since"],
  conversation_message: ["conversations"],
  trader_state: ["traders"],
  model: Object.keys(ENDPOINTS),
  views: ["leaderboard", "since"],
  leaderboard: ["leaderboard"],
  since_inception: ["since"],
  analytics: ["leaderboard"],
};

const POLL_MS = 5000; // while the stream is down
const SAFETY_MS = 60000; // while it is up: derived data the stream may not name
const STREAM_RETRY_MS = 15000; // after the server refused the stream
const TRADES_SHOWN = 40;
const CYCLES_SHOWN = 30;
const SUMMARY_CHARS = 600;
const PALETTE = ["#58a6ff", "#f78166", "#3fb950", "#d29922", "#bc8cff", "#39c5cf", "#ec6cb9", "#c9d1d9",
  "#a5d6ff", "#7ee787", "#ffa657", "#f2cc60", "#d2a8ff", "#56d4dd", "#ffb4a2"];

const state = {
  prices: {}, lastPrices: {}, marks: {},
  leaderboard: [], since: [], accounts: [], positions: [], trades: [], conversations: [], traders: [],
  colors: new Map(), names: new Map(),
  range: "all", unit: "usd", chatModel: "",
  events: 0,
};

const $ = (id) => document.getElementById(id);
const chart = new EquityChart($("chart"));

// ------------------------------------------------------------------------------------ loading
const inflight = new Map(); // name -> promise
const again = new Set(); // asked again while in flight
const pending = new Set();
let flushTimer = null;

async function fetchJson(url) {
  // no-cache: revalidate with the ETag, so a change the stream announced is never answered from the
  // browser's cache (304 when nothing changed)
  const response = await fetch(url, { cache: "no-cache", headers: { accept: "application/json" } });
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response.json();
}

function load(name) {
  if (inflight.has(name)) { again.add(name); return inflight.get(name); }
  const job = fetchJson(ENDPOINTS[name])
    .then((body) => { apply(name, body); setUpdated(); })
    .catch((err) => { showProblem(err); })
    .finally(() => {
      inflight.delete(name);
      if (again.delete(name)) load(name);
    });
  inflight.set(name, job);
  return job;
}

/** Reload ``names`` soon, coalescing a burst of changes into one request per endpoint. */
function refresh(names) {
  for (const n of names) pending.add(n);
  if (flushTimer === null) {
    flushTimer = setTimeout(() => {
      flushTimer = null;
      const batch = Array.from(pending);
      pending.clear();
      for (const n of batch) load(n);
    }, 150);
  }
}

function refreshAll() {
  return Promise.all(Object.keys(ENDPOINTS).map(load));
}

function apply(name, body) {
  switch (name) {
    case "prices": {
      const prices = body && typeof body.prices === "object" && body.prices ? body.prices : {};
      for (const [sym, p] of Object.entries(prices)) setPrice(sym, p && p.price);
      renderTicker();
      break;
    }
    case "leaderboard": state.leaderboard = listOf(body, "leaderboard"); break;
    case "since": state.since = listOf(body, "sinceInceptionValues"); break;
    case "accounts": state.accounts = listOf(body, "accountTotals"); break;
    case "positions": state.positions = listOf(body, "accountTotals"); state.marks = {}; break;
    case "trades": state.trades = listOf(body, "trades"); break;
    case "conversations": state.conversations = listOf(body, "conversations"); break;
    case "traders": state.traders = listOf(body, "traders"); break;
  }
  if (name !== "prices") renderAfter(name);
}

function listOf(body, field) {
  const value = body && body[field];
  return Array.isArray(value) ? value.filter((x) => x && typeof x === "object") : [];
}

function setPrice(symbol, value) {
  const v = num(value);
  if (v === null || typeof symbol !== "string") return;
  if (state.prices[symbol] !== undefined && state.prices[symbol] !== v) state.lastPrices[symbol] = state.prices[symbol];
  state.prices[symbol] = v;
}

function renderAfter(name) {
  refreshModels();
  if (name === "traders" || name === "since" || name === "accounts" || name === "leaderboard" || name === "positions") {
    renderLeaderboard();
    renderChart();
  }
  if (name === "positions") renderPositions();
  if (name === "trades") renderTrades();
  if (name === "conversations" || name === "traders") renderChat();
  if (name === "traders") renderTraders();
  if (name === "traders" || name === "leaderboard") { renderPositions(); renderTrades(); }
}

// ------------------------------------------------------------------------------------ models
function modelIds() {
  const ids = new Set();
  for (const e of state.leaderboard) if (typeof e.id === "string") ids.add(e.id);
  for (const lists of [state.since, state.accounts, state.positions, state.conversations]) {
    for (const e of lists) if (typeof e.model_id === "string") ids.add(e.model_id);
  }
  for (const t of state.traders) if (typeof t.id === "string") ids.add(t.id);
  return Array.from(ids).sort();
}

function refreshModels() {
  const ids = modelIds();
  ids.forEach((id, i) => { if (!state.colors.has(id)) state.colors.set(id, PALETTE[state.colors.size % PALETTE.length]); });
  for (const t of state.traders) if (typeof t.id === "string" && typeof t.name === "string" && t.name) state.names.set(t.id, t.name);
  const select = $("chat-model");
  const have = new Set(Array.from(select.options, (o) => o.value));
  for (const id of ids) if (!have.has(id)) select.append(el("option", { value: id, text: nameOf(id) }));
  return ids;
}

const nameOf = (id) => state.names.get(id) || id;
const colorOf = (id) => state.colors.get(id) || PALETTE[0];

function modelCell(id) {
  return el("td", { class: "model", title: id }, el("span", { class: "swatch", style: { background: colorOf(id) } }), nameOf(id));
}

// ------------------------------------------------------------------------------------ ticker
function renderTicker() {
  const items = Object.keys(state.prices).sort().map((sym) => {
    const v = state.prices[sym], before = state.lastPrices[sym];
    const cls = before === undefined ? "" : v > before ? "up" : v < before ? "down" : "";
    return el("span", { class: `tick ${cls}`, dataset: { symbol: sym } },
      el("span", { class: "sym", text: sym }), el("span", { class: "px", text: price(v) }));
  });
  $("ticker").replaceChildren(...(items.length ? items : [el("span", { class: "muted", text: "no prices yet" })]));
}

// ------------------------------------------------------------------------------------ leaderboard
function baseOf(id) {
  const s = state.since.find((x) => x.model_id === id);
  return s && num(s.nav_since_inception) !== null ? s.nav_since_inception : null;
}

/** The model's equity history: its inception at its starting capital, then the hourly records. */
function historyOf(id) {
  const points = [];
  const s = state.since.find((x) => x.model_id === id);
  const base = baseOf(id);
  if (s && num(s.inception_date) !== null && base !== null) points.push([s.inception_date * 1000, base]);
  for (const r of state.accounts) {
    if (r.model_id === id && num(r.timestamp) !== null && num(r.dollar_equity) !== null) points.push([r.timestamp * 1000, r.dollar_equity]);
  }
  points.sort((a, b) => a[0] - b[0]);
  return points;
}

function leaderRows() {
  return modelIds().map((id) => {
    const entry = state.leaderboard.find((e) => e.id === id) || {};
    const history = historyOf(id);
    const latest = history.length ? history[history.length - 1][1] : null;
    // the latest equity snapshot when the model has any (live), else the leaderboard job's figure
    const snapshots = state.accounts.some((r) => r.model_id === id);
    const equity = snapshots && latest !== null ? latest : num(entry.equity);
    const base = baseOf(id) ?? (num(entry.equity) !== null && num(entry.return_pct) !== null ? entry.equity / (1 + entry.return_pct / 100) : null);
    const ret = equity !== null && base ? (equity / base - 1) * 100 : num(entry.return_pct);
    const wins = num(entry.num_wins), losses = num(entry.num_losses);
    const decided = (wins || 0) + (losses || 0);
    return {
      id, equity, ret, pnl: equity !== null && base !== null ? equity - base : null,
      trades: num(entry.num_trades) ?? state.trades.filter((t) => t.model_id === id).length,
      winRate: decided ? ((wins || 0) / decided) * 100 : null,
      sharpe: num(entry.sharpe),
    };
  }).sort((a, b) => (b.equity ?? -Infinity) - (a.equity ?? -Infinity) || a.id.localeCompare(b.id));
}

function renderLeaderboard() {
  const rows = leaderRows().map((r, i) => ({ ...r, rank: i + 1 }));
  fillRows($("leaderboard").tBodies[0], rows, (r) => r.id, (r) => el("tr", { dataset: { model: r.id } },
    el("td", { class: "n", text: String(r.rank) }), modelCell(r.id),
    el("td", { class: "n", text: money(r.equity) }),
    el("td", { class: `n ${tone(r.ret)}`, text: pct(r.ret) }),
    el("td", { class: `n ${tone(r.pnl)}`, text: money(r.pnl, { sign: true }) }),
    el("td", { class: "n", text: r.trades === null ? "–" : String(r.trades) }),
    el("td", { class: "n", text: r.winRate === null ? "–" : pct(r.winRate, { sign: false, digits: 0 }) }),
    el("td", { class: "n", text: plain(r.sharpe, 3) })), { emptyText: "no models yet", columns: 8 });
}

// ------------------------------------------------------------------------------------ chart
function renderChart() {
  const ids = modelIds();
  const series = ids.map((id) => ({ id, label: nameOf(id), color: colorOf(id), base: baseOf(id), points: historyOf(id) }));
  chart.update(series, { range: state.range, unit: state.unit });
  const legend = ids.map((id) => {
    const h = historyOf(id);
    const last = h.length ? h[h.length - 1][1] : null;
    return el("li", { dataset: { model: id }, onmouseenter: () => chart.highlight(id), onmouseleave: () => chart.highlight(null) },
      el("span", { class: "swatch", style: { background: colorOf(id) } }), nameOf(id),
      el("span", { class: "v", text: money(last) }));
  });
  $("legend").replaceChildren(...legend);
}

function bindSwitch(groupId, key, attr) {
  $(groupId).addEventListener("click", (ev) => {
    const button = ev.target.closest("button");
    if (!button) return;
    state[key] = button.dataset[attr];
    for (const b of $(groupId).querySelectorAll("button")) b.setAttribute("aria-pressed", String(b === button));
    renderChart();
  });
}

// ------------------------------------------------------------------------------------ positions
function positionRows() {
  const rows = [];
  for (const account of state.positions) {
    const held = account.positions && typeof account.positions === "object" ? account.positions : {};
    for (const [symbol, p] of Object.entries(held)) {
      if (!p || typeof p !== "object") continue;
      const qty = num(p.quantity), entry = num(p.entry_price);
      const live = state.marks[symbol];
      const mark = live !== undefined ? live : num(p.current_price);
      const upnl = live !== undefined && qty !== null && entry !== null ? qty * (live - entry) : num(p.unrealized_pnl);
      rows.push({ model: account.model_id, symbol, qty, entry, mark, upnl, leverage: num(p.leverage) });
    }
  }
  return rows.sort((a, b) => String(a.model).localeCompare(String(b.model)) || a.symbol.localeCompare(b.symbol));
}

function renderPositions() {
  const rows = positionRows();
  fillRows($("positions").tBodies[0], rows, (r) => `${r.model}/${r.symbol}`, (r) => el("tr", { dataset: { model: r.model } },
    modelCell(r.model), el("td", { text: r.symbol }),
    el("td", {}, el("span", { class: `badge ${r.qty < 0 ? "short" : "long"}`, text: r.qty < 0 ? "short" : "long" })),
    el("td", { class: "n", text: quantity(r.qty) }),
    el("td", { class: "n", text: r.leverage === null ? "–" : `${r.leverage}x` }),
    el("td", { class: "n", text: price(r.entry) }),
    el("td", { class: "n", text: price(r.mark) }),
    el("td", { class: `n ${tone(r.upnl)}`, text: money(r.upnl, { sign: true }) })), { emptyText: "no open positions", columns: 8 });
  const total = rows.reduce((sum, r) => sum + (r.upnl || 0), 0);
  $("positions-total").textContent = rows.length ? `${rows.length} open · unrealized ${money(total, { sign: true })}` : "";
}

// ------------------------------------------------------------------------------------ trades
function renderTrades() {
  const trades = state.trades.slice(0, TRADES_SHOWN);
  fillRows($("trades").tBodies[0], trades, (t) => String(t.id), (t) => {
    const side = t.side === "short" || num(t.quantity) < 0 ? "short" : "long";
    return el("tr", { dataset: { model: t.model_id, trade: String(t.id) } },
      el("td", { class: "muted", text: when(t.exit_time) }), modelCell(t.model_id),
      el("td", {}, el("span", { class: `badge ${side}`, text: side }), ` ${String(t.symbol ?? "")} ${quantity(t.quantity)}`),
      el("td", { class: "n", text: `${price(t.entry_price)} → ${price(t.exit_price)}` }),
      el("td", { class: `n ${tone(t.realized_net_pnl)}`, text: money(t.realized_net_pnl, { sign: true }) }));
  }, { emptyText: "no closed trades yet", columns: 5 });
}

// ------------------------------------------------------------------------------------ chat
/** nof1's per-cycle items, or (older dashboards' shape) a model's message list paired into cycles. */
function cycles() {
  const out = [];
  for (const item of state.conversations) {
    const model = item.model_id;
    const isCycle = "llm_response" in item || "cot_trace" in item || "user_prompt" in item || "cot_trace_summary" in item;
    if (isCycle) {
      out.push({
        key: String(item.id ?? `${model}_${item.cycle_id ?? item.timestamp}`), model, at: num(item.timestamp),
        summary: textOf(item.cot_trace_summary), decisions: decisionsOf(item.llm_response),
        prompt: textOf(item.user_prompt), reasoning: textOf(item.cot_trace),
        reply: item.llm_response !== undefined && typeof item.llm_response !== "string" ? null : textOf(item.llm_response),
      });
    }
    if (!isCycle && Array.isArray(item.messages)) { // a cycle item's messages are that cycle: shown once
      let prompt = "", system = "";
      item.messages.forEach((msg, i) => {
        if (!msg || typeof msg !== "object") return;
        const content = textOf(msg.content);
        if (msg.role === "system") system = content;
        else if (msg.role === "user") prompt = content;
        else if (msg.role === "assistant") {
          out.push({ key: `${model}_m${i}_${msg.timestamp}`, model, at: num(msg.timestamp), summary: content,
            decisions: [], prompt: [system, prompt].filter(Boolean).join("\n\n"), reasoning: content, reply: null });
          prompt = "";
        }
      });
    }
  }
  return out.sort((a, b) => (b.at ?? 0) - (a.at ?? 0));
}

function textOf(value) {
  if (value === undefined || value === null) return "";
  return typeof value === "string" ? value : JSON.stringify(value, null, 2);
}

function decisionsOf(response) {
  if (!response || typeof response !== "object") return [];
  const list = Array.isArray(response) ? response : Object.entries(response).map(([coin, d]) => ({ coin, ...(d && typeof d === "object" ? d : {}) }));
  return list.filter((d) => d && typeof d === "object").map((d) => ({
    coin: textOf(d.coin ?? d.symbol), signal: textOf(d.signal ?? d.action), confidence: num(d.confidence),
  }));
}

/** A <details> whose text is put in only when opened (the prompt and reasoning can be long). */
function onDemand(label, text) {
  if (!text) return null;
  const pre = el("pre");
  const details = el("details", {}, el("summary", { text: label }), pre);
  details.addEventListener("toggle", () => { if (details.open && !pre.textContent) pre.textContent = text; });
  return details;
}

function renderChat() {
  const shown = cycles().filter((c) => !state.chatModel || c.model === state.chatModel).slice(0, CYCLES_SHOWN);
  const items = shown.map((c) => {
    const summary = c.summary.length > SUMMARY_CHARS ? c.summary.slice(0, SUMMARY_CHARS) + "…" : c.summary;
    return el("article", { class: "cycle", dataset: { model: c.model, key: c.key } },
      el("div", { class: "cycle-head" },
        el("span", { class: "swatch", style: { background: colorOf(c.model) } }),
        el("span", { class: "who", text: nameOf(c.model) }),
        el("span", { class: "when", text: when(c.at) })),
      summary ? el("div", { class: "summary", text: summary }) : null,
      c.decisions.length ? el("div", { class: "decisions" }, c.decisions.map((d) => el("span", { class: "decision" },
        `${d.coin} `, el("span", { class: `badge ${d.signal}`, text: d.signal || "?" }),
        d.confidence === null ? "" : ` ${Math.round(d.confidence * 100)}%`))) : null,
      onDemand("prompt", c.prompt), onDemand("reasoning", c.reasoning), onDemand("reply", c.reply));
  });
  $("chat").replaceChildren(...(items.length ? items : [el("div", { class: "empty", text: "no model chat yet" })]));
}

// ------------------------------------------------------------------------------------ traders
function budgetText(budget) {
  if (!budget || typeof budget !== "object") return "–";
  const usd = num(budget.cost_usd_today), limitUsd = num(budget.daily_budget_usd);
  const tokens = num(budget.tokens_today), limitTokens = num(budget.daily_budget_tokens);
  if (limitUsd) return `${money(usd ?? 0)} / ${money(limitUsd)}`; // 0: no limit
  if (limitTokens) return `${(tokens ?? 0).toLocaleString("en-US")} / ${limitTokens.toLocaleString("en-US")} tok`;
  return usd !== null ? money(usd) : "–";
}

function renderTraders() {
  const now = Date.now();
  fillRows($("traders").tBodies[0], state.traders, (t) => String(t.id), (t) => el("tr", { dataset: { model: t.id } },
    modelCell(t.id),
    el("td", {}, t.status ? el("span", { class: `badge ${t.status}`, text: t.status, title: t.status === "paused" ? `until ${when(t.pause_until)}` : null })
      : el("span", { class: "muted", text: "not traded here" })),
    el("td", { title: when(t.last_decision_at), text: relative(t.last_decision_at, now) }),
    el("td", { title: when(t.next_decision_at), text: relative(t.next_decision_at, now) }),
    el("td", { class: "n", text: budgetText(t.budget) })), { emptyText: "no traders", columns: 5 });
}

// ------------------------------------------------------------------------------------ status
function setConn(mode) {
  const conn = $("conn");
  conn.dataset.state = mode;
  conn.textContent = { live: "live", polling: "polling", connecting: "connecting", offline: "offline" }[mode] || mode;
}

function setUpdated() {
  $("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
}

let problemShown = false;
function showProblem(err) {
  // shown on the page, not thrown: the next poll or change retries
  if (!problemShown) { problemShown = true; setTimeout(() => { problemShown = false; }, 5000); }
  $("updated").textContent = `cannot reach the API (${err && err.message ? err.message : err}); retrying`;
}

// ------------------------------------------------------------------------------------ stream and polling
let pollTimer = null;

function startPolling() {
  if (pollTimer !== null) return;
  setConn("polling");
  pollTimer = setInterval(refreshAll, POLL_MS);
  refreshAll();
}

function stopPolling() {
  if (pollTimer !== null) { clearInterval(pollTimer); pollTimer = null; }
}

function onChange(change) {
  state.events += 1;
  document.body.dataset.events = String(state.events);
  if (!change || typeof change !== "object") return;
  if (change.kind === "price_tick" && change.data && typeof change.data === "object") {
    for (const [sym, px] of Object.entries(change.data)) {
      setPrice(sym, px);
      if (num(px) !== null) state.marks[sym] = px;
    }
    renderTicker();
    renderPositions();
    return;
  }
  refresh(AFFECTS[change.kind] || []);
}

function connect() {
  if (typeof EventSource !== "function") { startPolling(); return; }
  setConn("connecting");
  const stream = new EventSource("/api/stream");
  stream.addEventListener("hello", () => { stopPolling(); setConn("live"); refreshAll(); });
  stream.addEventListener("change", (ev) => {
    let change;
    try { change = JSON.parse(ev.data); } catch { return; }
    onChange(change);
  });
  stream.addEventListener("reset", () => refreshAll()); // the server could not resume: load everything
  stream.addEventListener("error", () => {
    if (stream.readyState === EventSource.CLOSED) { // refused (not a stream): poll, try again later
      startPolling();
      setTimeout(connect, STREAM_RETRY_MS);
    } else {
      startPolling(); // reconnecting on its own; poll meanwhile
    }
  });
}

bindSwitch("range", "range", "range");
bindSwitch("unit", "unit", "unit");
$("chat-model").addEventListener("change", (ev) => { state.chatModel = ev.target.value; renderChat(); });
setInterval(() => { if (pollTimer === null) refreshAll(); }, SAFETY_MS);
setInterval(renderTraders, 5000); // relative times move on
refreshAll().then(() => { document.body.dataset.loaded = "1"; });
connect();
