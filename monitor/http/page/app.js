// driftd's built-in drift page: plain JavaScript, no framework, everything from this origin.
// All text that comes from the API is put into the page with textContent, never parsed as HTML.
"use strict";

(function () {
  const API = "api/v1";
  const REFRESH_MS = 10000;
  const WINDOW_LIMIT = 100;     // windows on the timeline
  const HEATMAP_COLUMNS = 24;   // windows in the heatmap
  const RESULT_LIMIT = 500;     // one page of results feeds the heatmap
  const SVG_NS = "http://www.w3.org/2000/svg";
  const STATES = { ok: "ok", warning: "warning", drift: "drift" };

  const view = { measure: "drifted", timer: null, generation: 0 };

  // ---- small DOM helpers ----------------------------------------------------------------------

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    setAttrs(node, attrs);
    append(node, children);
    return node;
  }

  function svg(tag, attrs, children) {
    const node = document.createElementNS(SVG_NS, tag);
    setAttrs(node, attrs);
    append(node, children);
    return node;
  }

  function setAttrs(node, attrs) {
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "text") node.textContent = String(value);
      else node.setAttribute(key, String(value));
    }
  }

  function append(node, children) {
    if (children === null || children === undefined) return;
    for (const child of Array.isArray(children) ? children : [children]) {
      if (child === null || child === undefined || child === false) continue;
      node.appendChild(typeof child === "string" || typeof child === "number"
        ? document.createTextNode(String(child)) : child);
    }
  }

  function svgTitle(text) {
    return svg("title", { text: text });
  }

  // ---- formatting -----------------------------------------------------------------------------

  function percent(share) {
    return share === null || share === undefined ? "–" : (share * 100).toFixed(1) + " %";
  }

  function number(value) {
    if (value === null || value === undefined) return "–";
    if (value === "Infinity" || value === "-Infinity") return value === "Infinity" ? "∞" : "−∞";  // JSON has no inf
    const magnitude = Math.abs(value);
    if (magnitude !== 0 && (magnitude < 0.001 || magnitude >= 100000)) return value.toExponential(2);
    return value.toPrecision(4).replace(/\.?0+$/, "");
  }

  function when(iso) {
    if (!iso) return "–";
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) return String(iso);
    return date.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
  }

  function ago(iso) {
    if (!iso) return "";
    const seconds = Math.round((Date.now() - new Date(iso).getTime()) / 1000);
    if (!Number.isFinite(seconds)) return "";
    if (seconds < 60) return seconds + " s ago";
    if (seconds < 3600) return Math.round(seconds / 60) + " min ago";
    if (seconds < 172800) return Math.round(seconds / 3600) + " h ago";
    return Math.round(seconds / 86400) + " d ago";
  }

  function windowTime(w) {
    return w.ended_at || w.evaluated_at;
  }

  function stateBadge(state) {
    const known = STATES[state];
    return el("span", { class: "state state-" + (known || "none"), "data-state": known || "none",
                        text: known || "no data" });
  }

  // ---- the API --------------------------------------------------------------------------------

  async function getJSON(path) {
    const response = await fetch(API + path, { headers: { Accept: "application/json" } });
    let body = null;
    try { body = await response.json(); } catch (error) { body = null; }
    if (!response.ok) {
      const message = body && body.error ? body.error : response.status + " " + response.statusText;
      throw new Error(message);
    }
    return body;
  }

  function monitorPath(name) {
    return "/monitors/" + encodeURIComponent(name);
  }

  // ---- routing and refresh --------------------------------------------------------------------

  function route() {
    const hash = window.location.hash || "#/";
    const match = /^#\/monitors\/([^/]+)\/?$/.exec(hash);
    if (match) {
      let name;
      try { name = decodeURIComponent(match[1]); } catch (error) { name = match[1]; }
      return { page: "monitor", name: name };
    }
    return { page: "list" };
  }

  async function render() {
    const generation = ++view.generation;
    const target = route();
    const main = document.getElementById("main");
    let content;
    try {
      content = target.page === "monitor" ? await monitorPage(target.name) : await listPage();
    } catch (error) {
      content = errorPanel(error);
    }
    if (generation !== view.generation) return;  // a newer render started meanwhile
    main.replaceChildren(content);
    main.setAttribute("aria-busy", "false");
    main.dataset.page = target.page;
    main.dataset.loaded = String(generation);
    document.getElementById("refreshed").textContent = "Updated " + new Date().toLocaleTimeString();
  }

  function schedule() {
    if (view.timer !== null) window.clearInterval(view.timer);
    view.timer = window.setInterval(render, REFRESH_MS);
  }

  function errorPanel(error) {
    return el("section", { class: "error", role: "alert" }, [
      el("h1", { text: "Could not load the data" }),
      el("p", { text: String(error && error.message ? error.message : error) }),
      el("p", { text: "The page retries every 10 seconds." }),
    ]);
  }

  // ---- the list of monitors -------------------------------------------------------------------

  async function listPage() {
    const data = await getJSON("/monitors");
    const monitors = data.monitors || [];
    const section = el("section", { class: "monitors", "aria-labelledby": "monitors-title" },
      el("h1", { id: "monitors-title", text: "Monitors" }));
    document.title = "driftd · monitors";
    if (monitors.length === 0) {
      section.appendChild(el("div", { class: "empty", "data-empty": "monitors" }, [
        el("p", { text: "No monitors are configured." }),
        el("p", { text: "Add monitors to the configuration file (see driftd config validate), " +
                        "or run driftd without a configuration to watch the built-in demo." }),
      ]));
      return section;
    }
    const counts = { ok: 0, warning: 0, drift: 0 };
    for (const m of monitors) if (counts[m.state] !== undefined) counts[m.state] += 1;
    section.appendChild(el("p", { class: "summary" }, [
      monitors.length + " monitor(s): ",
      el("span", { class: "count state-drift", text: counts.drift + " in drift" }), ", ",
      el("span", { class: "count state-warning", text: counts.warning + " warning" }), ", ",
      el("span", { class: "count state-ok", text: counts.ok + " ok" }),
    ]));

    const head = el("thead", null, el("tr", null, ["Monitor", "State", "Drift share", "Last window",
      "Source", "Windows", "Events"].map((label) => el("th", { scope: "col", text: label }))));
    const body = el("tbody");
    for (const m of monitors) {
      const last = m.last_window;
      const lastCell = last
        ? [el("span", { text: "#" + last.seq + " " }),
           el("time", { datetime: windowTime(last), title: when(windowTime(last)), text: ago(windowTime(last)) })]
        : "none yet";
      const source = m.source_up === true ? "up" : m.source_up === false ? "down" : "unknown";
      const status = m.error ? el("span", { class: "problem", text: " (" + m.error + ")" })
        : m.enabled ? (m.running ? null : el("span", { class: "muted", text: " (not running)" }))
          : el("span", { class: "muted", text: " (disabled)" });
      body.appendChild(el("tr", { "data-monitor": m.name }, [
        el("th", { scope: "row" }, [el("a", { href: "#" + monitorPath(m.name), text: m.name }), status]),
        el("td", null, stateBadge(m.state)),
        el("td", { class: "num", text: percent(m.drift_share) }),
        el("td", null, lastCell),
        el("td", null, el("span", { class: "source source-" + source, "data-source": source, text: source })),
        el("td", { class: "num", text: String(m.windows) }),
        el("td", { class: "num", text: String(m.events) }),
      ]));
    }
    section.appendChild(el("table", { class: "grid" }, [
      el("caption", { class: "visually-hidden", text: "Every configured monitor and its latest state" }),
      head, body]));
    return section;
  }

  // ---- one monitor ----------------------------------------------------------------------------

  async function monitorPage(name) {
    const path = monitorPath(name);
    const [monitor, windows, events] = await Promise.all([
      getJSON(path),
      getJSON(path + "/windows?limit=" + WINDOW_LIMIT),
      getJSON(path + "/events?limit=100"),
    ]);
    document.title = "driftd · " + monitor.name;
    const section = el("section", { class: "monitor", "data-monitor": monitor.name,
                                    "aria-labelledby": "monitor-title" });
    section.appendChild(el("p", { class: "crumbs" }, el("a", { href: "#/", text: "← all monitors" })));
    section.appendChild(el("h1", { id: "monitor-title" }, [monitor.name + " ", stateBadge(monitor.state)]));
    if (monitor.error) {
      section.appendChild(el("section", { class: "error", role: "alert", "data-error": "monitor" }, [
        el("h2", { text: "This monitor cannot evaluate" }),
        el("p", { text: monitor.error }),
      ]));
    }
    section.appendChild(facts(monitor));

    const items = (windows.items || []).slice().reverse();  // oldest first
    if (items.length === 0) {
      section.appendChild(el("div", { class: "empty", "data-empty": "windows" }, [
        el("p", { text: "No windows evaluated yet." }),
        el("p", { text: "The monitor first reads its reference, then evaluates a window each time enough " +
                        "new rows have arrived. This page refreshes by itself." }),
      ]));
      return section;
    }
    section.appendChild(timelinePanel(monitor, items, events.items || []));
    section.appendChild(await heatmapPanel(monitor, items));
    section.appendChild(changesPanel(items));
    const performance = performancePanel(items);
    if (performance) section.appendChild(performance);
    section.appendChild(eventsPanel(events.items || []));
    return section;
  }

  function facts(m) {
    const config = m.config || {};
    const features = config.features || { numeric: [], categorical: [] };
    const source = m.source_up === true ? "up" : m.source_up === false ? "down" : "unknown";
    const rows = [
      ["Drift share", percent(m.drift_share)],
      ["Last window", m.last_window ? "#" + m.last_window.seq + " at " + when(windowTime(m.last_window)) : "none yet"],
      ["Source", (config.source || "?") + " (" + source + ")"],
      ["Reference version", m.reference_version === null ? "none yet" : "v" + m.reference_version],
      ["Features", features.numeric.length + " numeric, " + features.categorical.length + " categorical"],
      ["Measures", (config.measures || []).map((x) => x.name).join(", ") || "–"],
      ["Drift rule", config.drift ? "share ≥ " + percent(config.drift.share) + " for " + config.drift.consecutive +
        " window(s), " + config.drift.correction + " correction" : "–"],
      ["Windows / events", m.windows + " / " + m.events],
      ["Backlog", backlog(m.backlog)],
    ];
    if (m.error) rows.push(["Error", m.error]);
    const list = el("dl", { class: "facts" });
    for (const [term, value] of rows) {
      list.appendChild(el("div", null, [el("dt", { text: term }), el("dd", { text: value })]));
    }
    return list;
  }

  function backlog(b) {
    if (!b || (b.rows === null && b.seconds === null)) return "not known for this source";
    if ((b.rows === null || b.rows === 0) && (b.seconds === null || b.seconds === 0)) return "caught up";
    const parts = [];
    if (b.rows !== null) parts.push(b.rows + " rows");
    if (b.seconds !== null) parts.push(Math.round(b.seconds) + " s of data");
    return parts.join(", ") + " behind";
  }

  // ---- the timeline ---------------------------------------------------------------------------

  function timelinePanel(monitor, items, events) {
    const width = 960, height = 240, left = 48, right = 16, top = 16, bottom = 36;
    const plotW = width - left - right, plotH = height - top - bottom;
    const first = items[0].seq, last = items[items.length - 1].seq;
    const x = (seq) => left + (last === first ? plotW / 2 : ((seq - first) / (last - first)) * plotW);
    const y = (share) => top + (1 - Math.max(0, Math.min(1, share))) * plotH;
    const threshold = monitor.config && monitor.config.drift ? monitor.config.drift.share : null;
    const driftWindows = items.filter((w) => w.state === "drift").length;
    const inRange = events.filter((e) => e.window_seq >= first && e.window_seq <= last);

    const chart = svg("svg", { class: "timeline", viewBox: "0 0 " + width + " " + height, role: "img",
                               "aria-labelledby": "timeline-title timeline-desc",
                               preserveAspectRatio: "xMidYMid meet" });
    chart.appendChild(svg("title", { id: "timeline-title", text: "Drift share per window of " + monitor.name }));
    chart.appendChild(svg("desc", { id: "timeline-desc",
      text: items.length + " windows (#" + first + " to #" + last + "), " + driftWindows + " in drift, " +
            inRange.length + " drift event(s) marked" }));

    for (const tick of [0, 0.25, 0.5, 0.75, 1]) {
      chart.appendChild(svg("line", { class: "gridline", x1: left, x2: left + plotW, y1: y(tick), y2: y(tick) }));
      chart.appendChild(svg("text", { class: "axis", x: left - 6, y: y(tick) + 4, "text-anchor": "end",
                                      text: Math.round(tick * 100) + "%" }));
    }
    if (threshold !== null && threshold !== undefined) {
      chart.appendChild(svg("line", { class: "threshold", x1: left, x2: left + plotW, y1: y(threshold), y2: y(threshold) },
        svgTitle("drift when the share of drifted features reaches " + percent(threshold))));
      chart.appendChild(svg("text", { class: "axis threshold-label", x: left + plotW - 4, y: y(threshold) - 4,
                                      "text-anchor": "end", text: "threshold " + percent(threshold) }));
    }

    const points = items.filter((w) => w.drift_share !== null && w.drift_share !== undefined);
    if (points.length > 0) {
      const line = points.map((w, i) => (i ? "L" : "M") + x(w.seq).toFixed(1) + " " + y(w.drift_share).toFixed(1)).join(" ");
      const area = line + " L" + x(points[points.length - 1].seq).toFixed(1) + " " + y(0) +
                   " L" + x(points[0].seq).toFixed(1) + " " + y(0) + " Z";
      chart.appendChild(svg("path", { class: "area", d: area }));
      chart.appendChild(svg("path", { class: "line", d: line }));
    }
    for (const e of inRange) {
      const ex = x(e.window_seq);
      chart.appendChild(svg("g", { class: "event-marker", "data-event": e.id, "data-window": e.window_seq }, [
        svgTitle("drift event " + e.id + " at window #" + e.window_seq + " (" + when(e.created_at) + "): " +
                 (e.features || []).join(", ")),
        svg("line", { x1: ex, x2: ex, y1: top, y2: top + plotH }),
        ex > left + plotW / 2
          ? svg("text", { x: ex - 4, y: top + 10, "text-anchor": "end", text: "event " + e.id })
          : svg("text", { x: ex + 4, y: top + 10, text: "event " + e.id }),
      ]));
    }
    for (const w of points) {
      chart.appendChild(svg("circle", { class: "point state-" + (STATES[w.state] || "none"), cx: x(w.seq),
                                        cy: y(w.drift_share), r: items.length > 60 ? 2.5 : 4, "data-seq": w.seq },
        svgTitle("window #" + w.seq + " · " + w.state + " · drift share " + percent(w.drift_share) + " · " +
                 when(windowTime(w)))));
    }
    const labels = [items[0], items[items.length - 1]];
    if (items.length > 2) labels.splice(1, 0, items[Math.floor(items.length / 2)]);
    labels.forEach((w, i) => {
      const anchor = i === 0 ? "start" : i === labels.length - 1 ? "end" : "middle";
      chart.appendChild(svg("text", { class: "axis", x: x(w.seq), y: height - 18, "text-anchor": anchor,
                                      text: "#" + w.seq }));
      chart.appendChild(svg("text", { class: "axis", x: x(w.seq), y: height - 4, "text-anchor": anchor,
                                      text: when(windowTime(w)).slice(11) }));
    });

    return el("section", { class: "panel", "aria-labelledby": "timeline-heading" }, [
      el("h2", { id: "timeline-heading", text: "Drift share per window" }),
      el("p", { class: "legend" }, [
        "Share of features that drifted in each window (last " + items.length + "). Points: ",
        el("span", { class: "state state-ok", text: "ok" }), " ",
        el("span", { class: "state state-warning", text: "warning" }), " ",
        el("span", { class: "state state-drift", text: "drift" }),
        "; vertical red lines mark drift events; the dashed line is the drift threshold.",
      ]),
      el("div", { class: "chart" }, chart),
    ]);
  }

  // ---- the per-feature heatmap ----------------------------------------------------------------

  async function heatmapPanel(monitor, items) {
    const path = monitorPath(monitor.name);
    const recent = items.slice(-HEATMAP_COLUMNS);
    const since = windowTime(recent[0]);
    const measures = ((monitor.config && monitor.config.measures) || []).map((m) => m.name);
    if (view.measure !== "drifted" && measures.indexOf(view.measure) < 0) view.measure = "drifted";
    let query = "/results?limit=" + RESULT_LIMIT + "&since=" + encodeURIComponent(since);
    if (view.measure !== "drifted") query += "&measure=" + encodeURIComponent(view.measure);
    const page = await getJSON(path + query);
    const results = page.items || [];

    // seq → feature → [results]; a truncated page may hold only part of its oldest window
    const bySeq = new Map();
    for (const r of results) {
      if (!bySeq.has(r.seq)) bySeq.set(r.seq, new Map());
      const row = bySeq.get(r.seq);
      if (!row.has(r.feature)) row.set(r.feature, []);
      row.get(r.feature).push(r);
    }
    let columns = recent.filter((w) => bySeq.has(w.seq));
    if (page.next && columns.length > 1) columns = columns.slice(1);

    const features = [];
    const config = monitor.config && monitor.config.features ? monitor.config.features : { numeric: [], categorical: [] };
    for (const f of config.numeric.concat(config.categorical)) features.push(f);
    for (const row of bySeq.values()) for (const f of row.keys()) if (features.indexOf(f) < 0) features.push(f);

    const selector = el("select", { id: "measure", name: "measure" });
    selector.appendChild(el("option", { value: "drifted", text: "drifted (any measure)" }));
    for (const m of measures) selector.appendChild(el("option", { value: m, text: m }));
    selector.value = view.measure;
    selector.addEventListener("change", () => { view.measure = selector.value; render(); });

    const panel = el("section", { class: "panel", "aria-labelledby": "heatmap-heading" }, [
      el("h2", { id: "heatmap-heading", text: "Features per window" }),
      el("p", { class: "controls" }, [el("label", { for: "measure", text: "Colour by " }), selector]),
    ]);
    if (columns.length === 0 || features.length === 0) {
      panel.appendChild(el("p", { class: "empty", "data-empty": "results", text: "No per-feature results stored for these windows." }));
      return panel;
    }

    const cell = 26, gap = 2, labelW = 120, headH = 34;
    const width = labelW + columns.length * (cell + gap), height = headH + features.length * (cell + gap);
    const map = svg("svg", { class: "heatmap", viewBox: "0 0 " + width + " " + height, width: width, height: height,
                             role: "img", "aria-labelledby": "heatmap-title" });
    map.appendChild(svg("title", { id: "heatmap-title",
      text: "Per-feature drift of " + monitor.name + " in the last " + columns.length + " windows, coloured by " +
            (view.measure === "drifted" ? "drifted (any measure)" : view.measure) }));
    columns.forEach((w, i) => {
      if (i % Math.max(1, Math.ceil(columns.length / 12)) !== 0 && i !== columns.length - 1) return;
      map.appendChild(svg("text", { class: "axis", x: labelW + i * (cell + gap) + cell / 2, y: headH - 8,
                                    "text-anchor": "middle", text: "#" + w.seq }));
    });
    features.forEach((feature, row) => {
      const cy = headH + row * (cell + gap);
      const cells = columns.map((w) => ({ w: w, found: (bySeq.get(w.seq).get(feature) || []) }));
      const drifted = cells.length > 0 && cells[cells.length - 1].found.some((r) => r.drifted);
      const group = svg("g", { class: "feature-row", "data-feature": feature, "data-drifted": String(drifted) });
      group.appendChild(svg("text", { class: "feature" + (drifted ? " drifted" : ""), x: labelW - 8, y: cy + cell / 2 + 4,
                                      "text-anchor": "end", text: (drifted ? "⚠ " : "") + feature }));
      cells.forEach(({ w, found }, i) => {
        const cx = labelW + i * (cell + gap);
        const score = cellScore(found);
        const rect = svg("rect", { class: "cell", x: cx, y: cy, width: cell, height: cell, rx: 3,
                                   fill: score.colour, "data-seq": w.seq, "data-drifted": String(score.drifted) },
          svgTitle(feature + " · window #" + w.seq + " · " + score.text));
        group.appendChild(rect);
        if (score.drifted) {
          group.appendChild(svg("text", { class: "cell-mark", x: cx + cell / 2, y: cy + cell / 2 + 4,
                                          "text-anchor": "middle", "aria-hidden": "true", text: "×" }));
        }
      });
      map.appendChild(group);
    });
    panel.appendChild(el("div", { class: "chart scroll" }, map));
    panel.appendChild(el("p", { class: "legend" }, [
      el("span", { class: "swatch swatch-low", "aria-hidden": "true" }), " no sign of drift ",
      el("span", { class: "swatch swatch-high", "aria-hidden": "true" }), " strong sign of drift; ",
      "× marks a drifted feature. ",
      view.measure === "drifted" ? "Colour: the number of measures that flag the feature."
        : "Colour: how far past its threshold " + view.measure + " is (p-value or value; the threshold is the middle of the scale).",
      " ⚠ before a name: drifted in the latest window.",
    ]));
    return panel;
  }

  // how strongly a feature drifted in one window, as a colour and words
  function cellScore(found) {
    if (found.length === 0) return { colour: "#e5e7eb", drifted: false, text: "no result" };
    const drifted = found.some((r) => r.drifted);
    let t;
    let text;
    if (view.measure === "drifted") {
      const flagged = found.filter((r) => r.drifted).map((r) => r.measure);
      t = flagged.length / found.length;
      text = drifted ? "drifted by " + flagged.join(", ") : "no drift (" + found.map((r) => r.measure).join(", ") + ")";
    } else {
      const r = found[0];
      t = strength(r);
      text = r.measure + " = " + number(r.value) + (r.p_value !== null ? ", p = " + number(r.p_value) : "") +
             (r.threshold !== null ? ", threshold " + number(r.threshold) : "") + (r.drifted ? " · drifted" : " · no drift");
    }
    return { colour: colour(t), drifted: drifted, text: text };
  }

  // 0 … 1, with the threshold at 0.5: p-values on a log scale, values as a multiple of the threshold
  function strength(r) {
    if (r.p_value !== null && r.p_value !== undefined) {
      const limit = r.threshold && r.threshold > 0 && r.threshold < 1 ? r.threshold : 0.05;
      const p = Math.max(r.p_value, 1e-300);
      return Math.max(0, Math.min(1, Math.log10(p) / (2 * Math.log10(limit))));
    }
    if (r.value !== null && r.value !== undefined && r.threshold) {
      return Math.max(0, Math.min(1, Number(r.value) / (2 * r.threshold)));
    }
    return r.drifted ? 1 : 0;
  }

  // light green-grey → amber → red
  function colour(t) {
    const stops = [[220, 237, 225], [251, 191, 36], [185, 28, 28]];
    const scaled = Math.max(0, Math.min(1, t)) * (stops.length - 1);
    const i = Math.min(stops.length - 2, Math.floor(scaled));
    const f = scaled - i;
    const mix = stops[i].map((c, k) => Math.round(c + (stops[i + 1][k] - c) * f));
    return "rgb(" + mix.join(",") + ")";
  }

  // ---- what changed: the shift diagnoses of the latest window that has some -------------------

  function changesPanel(items) {
    const panel = el("section", { class: "panel changes", "aria-labelledby": "changes-heading" });
    const latest = items[items.length - 1];
    const found = items.slice().reverse().find((w) => (w.diagnoses || []).length > 0);
    if (!found) {
      panel.appendChild(el("h2", { id: "changes-heading", text: "What changed" }));
      panel.appendChild(el("p", { class: "empty", "data-empty": "changes",
        text: "No change of a known kind found in the last " + items.length + " windows." }));
      panel.appendChild(segmentsList(latest));
      return panel;
    }
    const label = found.seq === latest.seq ? "the latest window" : "window #" + found.seq +
      " (the latest with findings; #" + latest.seq + " has none)";
    panel.appendChild(el("h2", { id: "changes-heading", "data-window": found.seq,
                                 text: "What changed in " + label }));
    panel.appendChild(el("ul", { class: "changes" }, found.diagnoses.map((d) =>
      el("li", { "data-feature": d.feature, "data-kind": d.kind }, [
        el("span", { class: "kind", text: d.kind.replace("_", " ") }), " ", d.sentence]))));
    panel.appendChild(segmentsList(latest));
    return panel;
  }

  // the latest window's segments (features.segment_by): the drifted ones named, with their features
  function segmentsList(w) {
    const segments = w.segments || [];
    if (segments.length === 0) return el("span");
    const drifted = segments.filter((s) => s.drifted);
    const text = drifted.length === 0 ? "No segment drifted in the latest window (" + segments.length + " measured)."
      : "Segments drifted in the latest window: ";
    return el("p", { class: "segments", "data-drifted-segments": drifted.map((s) => s.segment).join(" ") },
      [text, ...drifted.map((s, i) => el("span", { class: "segment", "data-segment": s.segment,
        text: (i ? "; " : "") + s.segment + " (" + s.drifted_features.join(", ") + ")" }))]);
  }

  // ---- model performance ----------------------------------------------------------------------

  function performancePanel(items) {
    const rows = items.filter((w) => (w.performance || []).length).slice(-12).reverse();  // newest first
    if (rows.length === 0) return null;
    const body = el("tbody");
    for (const w of rows) {
      for (const m of w.performance) {
        const status = !m.reliable ? "unreliable: off the reference's support, cannot know without labels"
          : m.alert ? "drop" : "ok";
        body.appendChild(el("tr", { "data-performance": w.seq + ":" + m.metric,
                                    class: m.reliable ? (m.alert ? "drift" : "") : "warning" }, [
          el("td", { text: "#" + w.seq }),
          el("td", { text: m.metric }),
          el("td", { class: "num", text: number(m.estimated) + " [" + number(m.lower) + ", " + number(m.upper) + "]" }),
          el("td", { class: "num", text: number(m.reference) }),
          el("td", { class: "num", text: m.realized === null ? "no labels yet"
                                          : number(m.realized) + " (" + m.labelled_rows + " labels)" }),
          el("td", { class: "num", text: m.estimation_error === null ? "" : number(m.estimation_error) }),
          el("td", { text: status }),
        ]));
      }
    }
    return el("section", { class: "panel", "aria-labelledby": "performance-heading" }, [
      el("h2", { id: "performance-heading", text: "Model performance" }),
      el("p", { text: "Estimated without labels (confidence-based for classifiers, a loss model for regressors) " +
                      "with the interval a window of this size allows; realized once labels arrive." }),
      el("table", { class: "grid" }, [
        el("thead", null, el("tr", null, ["Window", "Metric", "Estimated [interval]", "Reference", "Realized",
                                          "Estimate − realized", "Status"]
          .map((label) => el("th", { scope: "col", text: label })))),
        body])]);
  }

  // ---- drift events ---------------------------------------------------------------------------

  function eventsPanel(events) {
    const panel = el("section", { class: "panel", "aria-labelledby": "events-heading" },
      el("h2", { id: "events-heading", text: "Drift events" }));
    if (events.length === 0) {
      panel.appendChild(el("p", { class: "empty", "data-empty": "events", text: "No drift events so far." }));
      return panel;
    }
    const body = el("tbody");
    for (const e of events) {
      body.appendChild(el("tr", { "data-event": e.id }, [
        el("td", { class: "num", text: String(e.id) }),
        el("td", { text: "#" + e.window_seq }),
        el("td", null, el("time", { datetime: e.created_at, text: when(e.created_at) })),
        el("td", { class: "num", text: percent(e.drift_share) }),
        el("td", { text: (e.features || []).join(", ") }),
      ]));
    }
    panel.appendChild(el("table", { class: "grid" }, [
      el("thead", null, el("tr", null, ["Event", "Window", "Time", "Drift share", "Drifted features"]
        .map((label) => el("th", { scope: "col", text: label })))),
      body]));
    return panel;
  }

  // ---- start ----------------------------------------------------------------------------------

  window.addEventListener("hashchange", () => { render(); schedule(); });
  render();
  schedule();
})();
