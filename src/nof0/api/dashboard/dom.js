// DOM and formatting helpers of the dashboard. Every string from the API reaches the page as a text
// node (textContent, createTextNode) or an attribute value: model chat is untrusted, nothing here
// parses HTML.

const SVG_NS = "http://www.w3.org/2000/svg";

function build(node, attrs, children) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") node.textContent = String(value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "style") for (const [prop, v] of Object.entries(value)) node.style.setProperty(prop, v); // CSSOM: allowed by the page's CSP
    else if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** el("td", {class: "n"}, "text", otherNode): an HTML element; strings become text nodes. */
export function el(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

/** The same for SVG elements. */
export function svg(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

export function num(value) {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

const usd2 = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD", minimumFractionDigits: 2, maximumFractionDigits: 2 });
const usd0 = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD", maximumFractionDigits: 0 });

export function money(value, { sign = false, whole = false } = {}) {
  const v = num(value);
  if (v === null) return "–";
  const text = (whole ? usd0 : usd2).format(Math.abs(v));
  if (v < 0) return "-" + text;
  return sign && v > 0 ? "+" + text : text;
}

export function pct(value, { sign = true, digits = 2 } = {}) {
  const v = num(value);
  if (v === null) return "–";
  return (sign && v > 0 ? "+" : "") + v.toFixed(digits) + "%";
}

export function plain(value, digits = 2) {
  const v = num(value);
  return v === null ? "–" : v.toFixed(digits);
}

/** A price with as many decimals as its size calls for (BTC 111,317.5; DOGE 0.19526). */
export function price(value) {
  const v = num(value);
  if (v === null) return "–";
  const abs = Math.abs(v);
  const digits = abs >= 1000 ? 1 : abs >= 10 ? 2 : abs >= 1 ? 4 : 5;
  return v.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function quantity(value) {
  const v = num(value);
  if (v === null) return "–";
  return Math.abs(v).toLocaleString("en-US", { maximumFractionDigits: 6 });
}

/** "up" / "down" / "" for colouring a signed number. */
export function tone(value) {
  const v = num(value);
  return v === null || v === 0 ? "" : v > 0 ? "up" : "down";
}

const dateTime = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });

/** Seconds since the epoch (the wire format) as a short local date and time. */
export function when(seconds) {
  const v = num(seconds);
  return v === null ? "–" : dateTime.format(new Date(v * 1000));
}

/** Seconds since the epoch relative to now: "3m ago", "in 2m". */
export function relative(seconds, nowMs = Date.now()) {
  const v = num(seconds);
  if (v === null) return "–";
  const diff = Math.round(v - nowMs / 1000);
  const abs = Math.abs(diff);
  const text = abs < 60 ? `${abs}s` : abs < 3600 ? `${Math.round(abs / 60)}m` : abs < 86400 ? `${Math.round(abs / 3600)}h` : `${Math.round(abs / 86400)}d`;
  return diff < 0 ? `${text} ago` : diff === 0 ? "now" : `in ${text}`;
}

/** One row per item, keyed by ``key(item)``: rows are replaced whole, and a row whose key is new is
 * marked ``fresh`` (a brief highlight) unless this is the first fill of the table. */
export function fillRows(tbody, items, key, row, { emptyText = "nothing yet", columns = 1 } = {}) {
  const known = new Set(Array.from(tbody.rows, (r) => r.dataset.key));
  const first = tbody.dataset.filled !== "1";
  const rows = items.map((item) => {
    const tr = row(item);
    tr.dataset.key = key(item);
    if (!first && !known.has(tr.dataset.key)) tr.classList.add("fresh");
    return tr;
  });
  if (!rows.length) rows.push(el("tr", {}, el("td", { class: "empty", colspan: columns, text: emptyText })));
  tbody.replaceChildren(...rows);
  tbody.dataset.filled = "1";
}
