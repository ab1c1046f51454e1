// teragate admin page: a small SVG line chart (no library, no build step). It draws time series
// of [time ms, value] points over a fixed span ending now, with a y axis of round ticks, a time
// axis in seconds ago and a legend. The page's live graphs use it; browser_test.go tests it.
'use strict';

window.TeragateChart = (() => {
  const NS = 'http://www.w3.org/2000/svg';
  const W = 640; // viewBox size; the SVG scales to its box
  const H = 220;
  const PAD = { left: 52, right: 12, top: 10, bottom: 46 };
  const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#17becf', '#8c564b', '#e377c2'];
  const TOTAL_COLOR = '#555';

  // ticks returns about n round values covering [min, max] (steps of 1, 2 or 5 × 10^k), from a
  // multiple of the step at or below min to one at or above max.
  function ticks(min, max, n) {
    if (!(max > min)) max = min + 1;
    const raw = (max - min) / Math.max(1, n);
    const mag = 10 ** Math.floor(Math.log10(raw));
    const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw);
    let v = Math.floor(min / step + 1e-9) * step;
    const out = [Number(v.toPrecision(12))];
    while (v < max - step * 1e-9) {
      v += step;
      out.push(Number(v.toPrecision(12)));
    }
    return out;
  }

  // label formats a tick value: integers plainly, large values with k/M, small ones with
  // up to two decimals.
  function label(v) {
    const a = Math.abs(v);
    if (a >= 1e6) return (v / 1e6).toPrecision(3).replace(/\.?0+$/, '') + 'M';
    if (a >= 1e4) return (v / 1e3).toPrecision(3).replace(/\.?0+$/, '') + 'k';
    return Number.isInteger(v) ? String(v) : String(Number(v.toFixed(2)));
  }

  function el(name, attrs, parent) {
    const e = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    if (parent) parent.appendChild(e);
    return e;
  }

  function text(parent, x, y, s, attrs) {
    const t = el('text', Object.assign({ x, y }, attrs), parent);
    t.textContent = s;
    return t;
  }

  // create makes a chart in container (emptied). opts.span is the time span shown in ms
  // (default 5 minutes). It returns {update(series, now)}: series is [{name, points, total}]
  // (points [[time ms, value], …], oldest first; total draws the series dashed and grey).
  function create(container, opts = {}) {
    const span = opts.span || 5 * 60 * 1000;
    const svg = el('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart-svg', role: 'img' });
    if (opts.title) el('title', {}, svg).textContent = opts.title;
    container.replaceChildren(svg);
    svg.dataset.points = '0';
    svg.dataset.series = '0';

    function update(series, now) {
      const t1 = now === undefined ? Date.now() : now;
      const t0 = t1 - span;
      const shown = series.map((s) => ({ s, pts: (s.points || []).filter(([t, v]) => t >= t0 && t <= t1 && Number.isFinite(v)) }));
      let max = 0;
      for (const { pts } of shown) for (const [, v] of pts) max = Math.max(max, v);
      const ys = ticks(0, max > 0 ? max : 1, 4);
      const yMax = ys[ys.length - 1];
      const x = (t) => PAD.left + ((t - t0) / span) * (W - PAD.left - PAD.right);
      const y = (v) => H - PAD.bottom - (v / yMax) * (H - PAD.top - PAD.bottom);
      svg.replaceChildren(...[...svg.childNodes].filter((n) => n.nodeName === 'title'));

      const grid = el('g', { class: 'grid' }, svg);
      for (const v of ys) {
        el('line', { x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v) }, grid);
        text(grid, PAD.left - 6, y(v) + 4, label(v), { 'text-anchor': 'end' });
      }
      const stepS = span >= 120000 ? 60 : span >= 30000 ? 10 : 1;
      for (let ago = 0; ago * 1000 <= span; ago += stepS) {
        const tx = x(t1 - ago * 1000);
        el('line', { x1: tx, x2: tx, y1: H - PAD.bottom, y2: H - PAD.bottom + 4 }, grid);
        text(grid, tx, H - PAD.bottom + 16, ago === 0 ? 'now' : '-' + ago + 's', { 'text-anchor': 'middle' });
      }

      let points = 0;
      const legend = el('g', { class: 'legend' }, svg);
      let lx = PAD.left;
      shown.forEach(({ s, pts }, i) => {
        const color = s.total ? TOTAL_COLOR : s.color || PALETTE[i % PALETTE.length];
        const line = el('polyline', {
          points: pts.map(([t, v]) => x(t).toFixed(1) + ',' + y(v).toFixed(1)).join(' '),
          fill: 'none', stroke: color, 'stroke-width': s.total ? 2.5 : 1.8,
        }, svg);
        if (s.total) line.setAttribute('stroke-dasharray', '6 3');
        line.dataset.series = s.name;
        line.dataset.points = String(pts.length);
        points += pts.length;
        el('rect', { x: lx, y: H - 14, width: 10, height: 10, fill: color }, legend);
        const name = text(legend, lx + 14, H - 5, s.name);
        lx += 24 + 7 * String(s.name).length;
        name.dataset.series = s.name;
      });
      svg.dataset.points = String(points);
      svg.dataset.series = String(shown.length);
      return points;
    }

    return { update, svg };
  }

  return { create, ticks, label };
})();
