/* A small SVG chart of the day: waiting tickets (line, left axis) and average waits (bars,
   right axis). No library. */
"use strict";

function hwDayChart(points, { width = 1000, height = 240 } = {}) {
  const pad = { l: 44, r: 44, t: 12, b: 26 };
  const w = width - pad.l - pad.r;
  const h = height - pad.t - pad.b;
  if (!points.length) {
    return `<svg viewBox="0 0 ${width} ${height}"><text x="${width / 2}" y="${height / 2}" text-anchor="middle" fill="#8a94a0">今天还没有数据</text></svg>`;
  }
  const maxWaiting = Math.max(5, ...points.map((p) => p.waiting));
  const maxWait = Math.max(10, ...points.map((p) => p.wait_avg_min || 0));
  const n = points.length;
  const x = (i) => pad.l + (n === 1 ? w / 2 : (i * w) / (n - 1));
  const yL = (v) => pad.t + h - (v / maxWaiting) * h;
  const yR = (v) => pad.t + h - (v / maxWait) * h;
  const barW = Math.max(2, Math.min(18, (w / n) * 0.6));
  let svg = `<svg viewBox="0 0 ${width} ${height}" role="img" aria-label="今日等候人数与等候时长">`;
  for (let k = 0; k <= 4; k++) {
    const y = pad.t + (h * k) / 4;
    svg += `<line x1="${pad.l}" x2="${pad.l + w}" y1="${y}" y2="${y}" stroke="#e6eaf0"/>`;
    svg += `<text x="${pad.l - 6}" y="${y + 4}" text-anchor="end" font-size="11" fill="#66717f">${Math.round(maxWaiting * (1 - k / 4))}</text>`;
    svg += `<text x="${pad.l + w + 6}" y="${y + 4}" font-size="11" fill="#b07010">${Math.round(maxWait * (1 - k / 4))}</text>`;
  }
  points.forEach((p, i) => {
    if (p.wait_avg_min != null) {
      svg += `<rect x="${x(i) - barW / 2}" y="${yR(p.wait_avg_min)}" width="${barW}" height="${pad.t + h - yR(p.wait_avg_min)}" fill="#f0a030" opacity=".75"><title>${p.at.slice(11, 16)} 平均等候 ${p.wait_avg_min} 分钟</title></rect>`;
    }
  });
  const line = points.map((p, i) => `${x(i).toFixed(1)},${yL(p.waiting).toFixed(1)}`).join(" ");
  svg += `<polyline points="${line}" fill="none" stroke="#1d5fbf" stroke-width="2.5"/>`;
  points.forEach((p, i) => {
    svg += `<circle cx="${x(i)}" cy="${yL(p.waiting)}" r="2.5" fill="#1d5fbf"><title>${p.at.slice(11, 16)} 等候 ${p.waiting} 人</title></circle>`;
    if (i % Math.max(1, Math.ceil(n / 12)) === 0 || i === n - 1) {
      svg += `<text x="${x(i)}" y="${height - 8}" text-anchor="middle" font-size="11" fill="#66717f">${p.at.slice(11, 16)}</text>`;
    }
  });
  return svg + "</svg>";
}
