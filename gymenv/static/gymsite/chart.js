/* gymsite charts: per-episode series drawn as SVG, with axes, ticks, points, a rolling mean and the
   success threshold. Written here rather than vendored: ~150 lines cover what the dashboard needs,
   with no build step and nothing to keep up to date. A chart with one episode, or with every value
   equal, gets a padded axis around the value instead of a flat, empty-looking box. */
"use strict";

const GymChart = (() => {
  const NS = "http://www.w3.org/2000/svg";
  const COLORS = ["#1a7f37", "#0969da", "#bf3989", "#9a6700"];
  const H = 230, M = { left: 54, right: 14, top: 26, bottom: 34 };

  function el(name, attrs, text) {
    const node = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // "Nice" tick values (1, 2, 5 x 10^k) covering [lo, hi].
  function ticks(lo, hi, count) {
    const span = hi - lo;
    const raw = span / Math.max(1, count);
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 5, 10].map((f) => f * mag).find((s) => s >= raw) || raw;
    const out = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toPrecision(12));
    return out;
  }

  // The value range to draw: the data and the threshold, padded when it is a single value.
  function domain(values, extra) {
    const all = values.concat(extra).filter((v) => v !== null && v !== undefined && isFinite(v));
    if (!all.length) return [0, 1];
    let lo = Math.min(...all), hi = Math.max(...all);
    if (lo === hi) {
      const pad = Math.abs(lo) > 0 ? Math.abs(lo) * 0.1 : 1;
      lo -= pad; hi += pad;
    } else {
      const pad = (hi - lo) * 0.06;
      lo -= pad; hi += pad;
    }
    return [lo, hi];
  }

  function rolling(values, window) {
    const out = [];
    let sum = 0, n = 0;
    const q = [];
    for (const v of values) {
      q.push(v);
      if (v !== null) { sum += v; n += 1; }
      if (q.length > window) { const old = q.shift(); if (old !== null) { sum -= old; n -= 1; } }
      out.push(n ? sum / n : null);
    }
    return out;
  }

  function label(v) {
    const a = Math.abs(v);
    if (a >= 1e4) return v.toExponential(1);
    if (a >= 100 || Number.isInteger(v)) return String(Math.round(v * 100) / 100);
    return v.toFixed(a >= 1 ? 1 : 2);
  }

  /* draw(svg, {lines: [{name, x: [...], y: [...]}], threshold, xLabel, yLabel, window}) */
  function draw(svg, spec) {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    // Drawn in the SVG's own pixels (not scaled from a fixed box), so labels stay 11 px at any width.
    const W = Math.max(280, Math.round(svg.getBoundingClientRect().width) || 640);
    svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
    svg.setAttribute("height", String(H));
    drawn.set(svg, spec);
    svg.classList.add("chart");
    const lines = spec.lines.filter((l) => l.x.length);
    const xs = lines.flatMap((l) => l.x);
    const ys = lines.flatMap((l) => l.y);
    const px = W - M.left - M.right, py = H - M.top - M.bottom;
    if (!xs.length) {
      svg.appendChild(el("text", { x: W / 2, y: H / 2, "text-anchor": "middle" }, spec.empty || "No finished episode yet"));
      return;
    }
    let [x0, x1] = [Math.min(...xs), Math.max(...xs)];
    if (x0 === x1) { x0 -= 0.5; x1 += 0.5; }  // one episode: centred, and no episode 0 on the axis
    const threshold = spec.threshold === null || spec.threshold === undefined ? [] : [spec.threshold];
    const [y0, y1] = domain(ys, threshold);
    const sx = (x) => M.left + ((x - x0) / (x1 - x0)) * px;
    const sy = (y) => M.top + py - ((y - y0) / (y1 - y0)) * py;

    for (const t of ticks(y0, y1, 5)) {
      svg.appendChild(el("line", { class: "gridline", x1: M.left, x2: W - M.right, y1: sy(t), y2: sy(t) }));
      svg.appendChild(el("text", { x: M.left - 6, y: sy(t) + 4, "text-anchor": "end" }, label(t)));
    }
    for (const t of ticks(x0, x1, 8).filter(Number.isInteger)) {
      svg.appendChild(el("line", { class: "axis", x1: sx(t), x2: sx(t), y1: M.top + py, y2: M.top + py + 4 }));
      svg.appendChild(el("text", { x: sx(t), y: M.top + py + 16, "text-anchor": "middle" }, String(t)));
    }
    svg.appendChild(el("line", { class: "axis", x1: M.left, x2: M.left, y1: M.top, y2: M.top + py }));
    svg.appendChild(el("line", { class: "axis", x1: M.left, x2: W - M.right, y1: M.top + py, y2: M.top + py }));
    svg.appendChild(el("text", { x: M.left + px / 2, y: H - 3, "text-anchor": "middle" }, spec.xLabel || "episode"));
    svg.appendChild(el("text", { x: 12, y: M.top + py / 2, "text-anchor": "middle",
      transform: `rotate(-90 12 ${M.top + py / 2})` }, spec.yLabel || ""));

    if (threshold.length) {
      svg.appendChild(el("line", { class: "threshold", x1: M.left, x2: W - M.right, y1: sy(threshold[0]), y2: sy(threshold[0]) }));
      svg.appendChild(el("text", { class: "threshold-label", x: W - M.right - 4, y: sy(threshold[0]) - 4,
        "text-anchor": "end" }, `success threshold ${label(threshold[0])}`));
    }
    const win = spec.window || 10;
    lines.forEach((line, i) => {
      const color = COLORS[i % COLORS.length];
      const pts = line.x.map((x, j) => [x, line.y[j]]).filter((p) => p[1] !== null);
      if (pts.length > 1) {
        svg.appendChild(el("polyline", { fill: "none", stroke: color, "stroke-width": 1.2, "stroke-opacity": 0.55,
          points: pts.map((p) => `${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join(" ") }));
      }
      const r = pts.length > 150 ? 1.6 : 3;
      for (const [x, y] of pts) {
        const dot = el("circle", { cx: sx(x).toFixed(1), cy: sy(y).toFixed(1), r, fill: color });
        dot.appendChild(el("title", {}, `${line.name ? line.name + ", " : ""}episode ${x}: ${label(y)}`));
        svg.appendChild(dot);
      }
      if (pts.length >= 3) {
        const mean = rolling(line.y, win);
        const mpts = line.x.map((x, j) => [x, mean[j]]).filter((p) => p[1] !== null);
        svg.appendChild(el("polyline", { class: "rolling", fill: "none", stroke: color, "stroke-width": 2.4,
          "stroke-dasharray": i ? "6 3" : "", points: mpts.map((p) => `${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join(" ") }));
      }
    });
    // Legend and the rolling mean's note sit above the plot, where no data or threshold is drawn.
    let lx = M.left;
    lines.forEach((l, i) => {
      if (!l.name) return;
      svg.appendChild(el("rect", { x: lx, y: 5, width: 10, height: 10, fill: COLORS[i % COLORS.length] }));
      svg.appendChild(el("text", { x: lx + 14, y: 14 }, l.name));
      lx += 24 + 7 * l.name.length;
    });
    if (lines.some((l) => l.y.length >= 3)) {
      svg.appendChild(el("text", { x: W - M.right, y: 14, "text-anchor": "end" }, `thick line: mean of the last ${win}`));
    }
  }

  /* The reward and length charts of runs ({name, series}) into two SVGs. */
  function episodes(rewardSvg, lengthSvg, runs, threshold) {
    const of = (key) => runs.map((r) => ({ name: runs.length > 1 ? r.name : "", x: r.series ? r.series.episode : [],
      y: r.series ? r.series[key] : [] }));
    if (rewardSvg) draw(rewardSvg, { lines: of("reward"), threshold, yLabel: "return" });
    if (lengthSvg) draw(lengthSvg, { lines: of("length"), yLabel: "steps" });
  }

  const drawn = new Map();
  let resizing = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizing);
    resizing = setTimeout(() => drawn.forEach((spec, svg) => (svg.isConnected ? draw(svg, spec) : drawn.delete(svg))), 150);
  });

  return { draw, episodes };
})();

document.addEventListener("DOMContentLoaded", () => {
  // Charts whose data the server put in the page (run page, comparison).
  const data = document.getElementById("chart-data");
  if (data) {
    const spec = JSON.parse(data.textContent);
    GymChart.episodes(document.getElementById("reward-chart"), document.getElementById("length-chart"),
      spec.runs, spec.threshold);
  }
});
