// A mission's graph in plain SVG: a column per wave, a box per task (its name, state,
// agent and cost, coloured by state through the stylesheet, a link to the task's page)
// and an arrow from each task to each task that comes after it. Drawn anew from the
// mission's status (GET /v1/missions/{name}: its `waves` of rows with `after` names).
"use strict";

const ttGraph = (() => {
  const NS = "http://www.w3.org/2000/svg";
  const W = 200, H = 66, GAP_X = 70, GAP_Y = 16, PAD = 12, HEAD = 24;

  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(NS, tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value !== undefined && value !== null) node.setAttribute(name, String(value));
    }
    for (const child of children) {
      if (child !== undefined && child !== null) node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  function cost(usd) { return usd === null || usd === undefined ? "-" : tt.money(Number(usd)); }

  function who(row) {
    if (row.agent) return row.agent;
    return row.role ? `role ${row.role}` : "-";
  }

  function box(row, x, y) {
    const tip = `${row.name}: ${row.state}` + (row.agent ? `, ${row.agent}` : "")
      + (row.blocked_reason ? ` (${row.blocked_reason})` : "");
    return svg("a", { href: `/tasks/${encodeURIComponent(row.id)}`, class: `box state-${row.state}`,
      "data-task": row.name, "data-id": row.id, "data-state": row.state },
    svg("title", {}, tip),
    svg("rect", { x, y, width: W, height: H, rx: 6 }),
    svg("text", { x: x + 10, y: y + 19, class: "name" }, tt.clip(row.name, 26)),
    svg("text", { x: x + 10, y: y + 37, class: "state-text" }, row.state),
    svg("text", { x: x + 10, y: y + 55, class: "meta" }, tt.clip(`${who(row)} \u00b7 ${cost(row.cost_usd)}`, 30)));
  }

  // an arrow from the right edge of `from` to the left edge of `to`
  function edge(from, to, names) {
    const x1 = from.x + W, y1 = from.y + H / 2, x2 = to.x - 2, y2 = to.y + H / 2;
    const bend = Math.max(24, (x2 - x1) / 2);
    return svg("path", { class: "edge", "marker-end": "url(#arrow)", "data-from": names[0],
      "data-to": names[1], d: `M${x1},${y1} C${x1 + bend},${y1} ${x2 - bend},${y2} ${x2},${y2}` });
  }

  // the graph of `waves` (a list of lists of rows) as an <svg>
  function draw(waves) {
    const tallest = Math.max(1, ...waves.map((w) => w.length));
    const width = PAD * 2 + waves.length * W + Math.max(0, waves.length - 1) * GAP_X;
    const height = PAD * 2 + HEAD + tallest * H + (tallest - 1) * GAP_Y;
    const root = svg("svg", { xmlns: NS, width, height, viewBox: `0 0 ${width} ${height}`,
      class: "graph", role: "img", "aria-label": "the mission's tasks by wave" });
    root.append(svg("defs", {}, svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5,
      markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
    svg("path", { d: "M0,0 L10,5 L0,10 z", class: "arrowhead" }))));
    const at = new Map();
    waves.forEach((wave, i) => {
      const x = PAD + i * (W + GAP_X);
      root.append(svg("text", { x, y: PAD + 12, class: "wave" }, `wave ${i + 1}`));
      wave.forEach((row, j) => at.set(row.name, { x, y: PAD + HEAD + j * (H + GAP_Y), row }));
    });
    const edges = svg("g", { class: "edges" });
    for (const { row, ...to } of at.values()) {
      for (const name of row.after || []) {
        const from = at.get(name);  // a task outside the mission has no box
        if (from) edges.append(edge(from, to, [name, row.name]));
      }
    }
    root.append(edges);
    for (const { row, x, y } of at.values()) root.append(box(row, x, y));
    return root;
  }

  return { draw };
})();
