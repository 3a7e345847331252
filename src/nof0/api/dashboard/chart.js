// The account value chart: one SVG line per model over time, drawn here (no chart library).
// Series are [{id, label, color, base, points: [[ms, equity], ...]}], points sorted by time;
// ``base`` is the starting capital, the 0 of the percent view.
import { el, svg, money, pct } from "./dom.js";

const HOUR = 3600 * 1000;
export const RANGES = { all: null, "72h": 72 * HOUR, "24h": 24 * HOUR };

function niceStep(span, count) {
  const raw = span / Math.max(1, count);
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const norm = raw / mag;
  return (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
}

function ticks(lo, hi, count) {
  const step = niceStep(hi - lo, count);
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  return out;
}

const DAY_MIN = 1440;
const TIME_STEPS = [1 / 60, 5 / 60, 15 / 60, 0.5, 1, 5, 15, 30, 60, 120, 360, 720, DAY_MIN, 2 * DAY_MIN, 7 * DAY_MIN, 14 * DAY_MIN, 30 * DAY_MIN,
  91 * DAY_MIN, 182 * DAY_MIN, 365 * DAY_MIN].map((m) => m * 60 * 1000);
const dayFmt = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric" });
const hourFmt = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const secondFmt = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
const tipFmt = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });

function timeTicks(lo, hi, count) {
  const step = TIME_STEPS.find((s) => (hi - lo) / s <= count) || niceStep(hi - lo, count);
  const offset = new Date(lo).getTimezoneOffset() * 60 * 1000; // ticks on local midnights and hours
  const out = [];
  for (let t = Math.ceil((lo - offset) / step) * step + offset; t <= hi; t += step) out.push(t);
  return { step, ticks: out };
}

/** The value a series holds at ``t``: its last point at or before ``t`` (null before its first). */
function valueAt(points, t) {
  let lo = 0, hi = points.length - 1, found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (points[mid][0] <= t) { found = mid; lo = mid + 1; } else hi = mid - 1;
  }
  return found < 0 ? null : points[found][1];
}

export class EquityChart {
  constructor(root) {
    this.root = root;
    this.series = [];
    this.range = "all";
    this.unit = "usd";
    this.hot = null;
    this.nowMs = Date.now();
    if (typeof ResizeObserver === "function") {
      let width = root.clientWidth;
      new ResizeObserver(() => {
        if (root.clientWidth !== width) { width = root.clientWidth; this.render(); }
      }).observe(root);
    }
  }

  update(series, { range = this.range, unit = this.unit, nowMs = Date.now() } = {}) {
    this.series = series;
    this.range = range;
    this.unit = unit;
    this.nowMs = nowMs;
    this.render();
  }

  highlight(id) {
    this.hot = id;
    const group = this.root.querySelector("g.lines");
    if (!group) return;
    group.classList.toggle("dim", id !== null);
    for (const path of group.querySelectorAll("path.series")) path.classList.toggle("hot", path.dataset.model === id);
  }

  value(s, equity) {
    return this.unit === "pct" ? (s.base ? (equity / s.base - 1) * 100 : 0) : equity;
  }

  label(v) {
    return this.unit === "pct" ? pct(v, { digits: 1 }) : money(v, { whole: Math.abs(v) >= 1000 });
  }

  render() {
    const root = this.root;
    const width = Math.max(240, root.clientWidth || 600);
    const height = Math.max(160, root.clientHeight || 320);
    const narrow = width < 520;
    const m = { left: narrow ? 52 : 70, right: 10, top: 10, bottom: 24 };
    const all = this.series.filter((s) => s.points.length);
    if (!all.length) {
      // the models still get their (empty) paths, so a reader can tell which models the chart knows
      root.replaceChildren(svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "account value" },
        svg("g", { class: "lines" }, this.series.map((s) => svg("path", { class: "series", d: "", stroke: s.color, dataset: { model: s.id } })))),
        el("div", { class: "none", text: "no equity history yet" }));
      return;
    }
    const last = Math.max(...all.map((s) => s.points[s.points.length - 1][0]));
    const first = Math.min(...all.map((s) => s.points[0][0]));
    const span = RANGES[this.range];
    const x1 = Math.max(last, Math.min(this.nowMs, last + HOUR));
    const x0 = span ? Math.max(first, x1 - span) : first;
    const xSpan = Math.max(1, x1 - x0);
    // each series inside the window; a value held from before the window starts at its left edge
    const visible = this.series.map((s) => {
      const pts = [];
      const before = valueAt(s.points, x0);
      if (before !== null) pts.push([x0, before]);
      for (const p of s.points) if (p[0] > x0 && p[0] <= x1) pts.push(p);
      if (pts.length) pts.push([x1, pts[pts.length - 1][1]]); // flat to the present: no new value yet
      return { s, pts: pts.map(([t, v]) => [t, this.value(s, v)]) };
    });
    const values = visible.flatMap((v) => v.pts.map((p) => p[1]));
    const baseline = this.unit === "pct" ? 0 : (all[0].base || null);
    if (baseline !== null) values.push(baseline);
    let y0 = Math.min(...values), y1 = Math.max(...values);
    const pad = (y1 - y0) * 0.08 || Math.abs(y1) * 0.05 || 1;
    y0 -= pad; y1 += pad;
    const X = (t) => m.left + ((t - x0) / xSpan) * (width - m.left - m.right);
    const Y = (v) => m.top + (1 - (v - y0) / (y1 - y0)) * (height - m.top - m.bottom);

    const axis = svg("g", { class: "axis" });
    for (const v of ticks(y0, y1, narrow ? 4 : 6)) {
      axis.append(svg("line", { class: "grid-line", x1: m.left, x2: width - m.right, y1: Y(v), y2: Y(v) }),
        svg("text", { x: m.left - 6, y: Y(v) + 4, "text-anchor": "end", text: this.label(v) }));
    }
    const tt = timeTicks(x0, x1, narrow ? 3 : 6);
    for (const t of tt.ticks) {
      const d = new Date(t);
      const midnight = d.getHours() === 0 && d.getMinutes() === 0;
      const text = tt.step >= 24 * HOUR || (midnight && tt.step >= HOUR) ? dayFmt.format(d)
        : tt.step < 60 * 1000 ? secondFmt.format(d) : hourFmt.format(d);
      axis.append(svg("text", { x: X(t), y: height - 6, "text-anchor": "middle", text }));
    }
    if (baseline !== null && baseline >= y0 && baseline <= y1) {
      axis.append(svg("line", { x1: m.left, x2: width - m.right, y1: Y(baseline), y2: Y(baseline), "stroke-dasharray": "4 4" }));
    }
    const lines = svg("g", { class: "lines" });
    for (const { s, pts } of visible) {
      const d = pts.map(([t, v], i) => `${i ? "L" : "M"}${X(t).toFixed(1)},${Y(v).toFixed(1)}`).join("");
      lines.append(svg("path", { class: "series", d, stroke: s.color, dataset: { model: s.id } }));
    }
    const cross = svg("line", { class: "cross", y1: m.top, y2: height - m.bottom, visibility: "hidden" });
    const overlay = svg("rect", { x: m.left, y: m.top, width: width - m.left - m.right, height: height - m.top - m.bottom, fill: "transparent" });
    const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "account value by model over time" },
      axis, lines, cross, overlay);
    const tip = el("div", { class: "tip", hidden: true });

    const hover = (ev) => {
      const box = chart.getBoundingClientRect();
      const px = ((ev.clientX - box.left) / box.width) * width;
      const t = x0 + ((px - m.left) / (width - m.left - m.right)) * xSpan;
      if (t < x0 || t > x1) return leave();
      cross.setAttribute("x1", X(t)); cross.setAttribute("x2", X(t)); cross.setAttribute("visibility", "visible");
      const rows = visible
        .map(({ s, pts }) => ({ s, v: valueAt(pts, t) }))
        .filter((r) => r.v !== null)
        .sort((a, b) => b.v - a.v)
        .map(({ s, v }) => el("div", {}, el("span", { class: "swatch", style: { background: s.color } }), `${s.label} ${this.label(v)}`));
      tip.replaceChildren(el("div", { class: "t", text: tipFmt.format(new Date(t)) }), ...rows);
      tip.hidden = false;
      const left = px > width / 2 ? px - tip.offsetWidth - 12 : px + 12;
      tip.style.left = `${Math.max(0, left)}px`;
      tip.style.top = `${m.top}px`;
    };
    const leave = () => { cross.setAttribute("visibility", "hidden"); tip.hidden = true; };
    overlay.addEventListener("pointermove", hover);
    overlay.addEventListener("pointerleave", leave);
    root.replaceChildren(chart, tip);
    if (this.hot !== null) this.highlight(this.hot);
  }
}
