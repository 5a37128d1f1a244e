// Gozer dashboard: reads GET /dashboard/stream (one JSON event per second,
// docs/ADMIN.md) and keeps one card per origin, sick ones first. Plain script,
// no library. The DOM hooks (data-origin, data-field, data-state,
// data-status) are stable: test/dashboard_test.go reads them.
"use strict";

(function () {
  const HISTORY = 60; // sparkline points (seconds)
  const STALE_MS = 3500; // no event for this long: the page says so
  const cards = new Map(); // origin name -> {el, fields, rates[], errors[]}
  const filterRows = new Map(); // filter file -> <tr>
  let lastEvent = 0;

  const $ = (sel, root) => (root || document).querySelector(sel);
  const field = (root, name) => root.querySelector('[data-field="' + name + '"]');

  function fmtRate(v) {
    if (v == null) return "–";
    if (v >= 1000) return (v / 1000).toFixed(v >= 10000 ? 0 : 1) + "k";
    if (v >= 100) return v.toFixed(0);
    if (v >= 10) return v.toFixed(1);
    return v === 0 ? "0" : v.toFixed(2);
  }
  function fmtShare(v) {
    if (v == null) return "–";
    const p = v * 100;
    return (p === 0 || p >= 10 ? p.toFixed(0) : p.toFixed(1)) + "%";
  }
  function fmtMS(v) {
    if (v == null) return "–";
    return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
  }
  function fmtInt(v) { return v == null ? "–" : Number(v).toLocaleString("en-US"); }

  function set(el, text, hot) {
    if (el.textContent !== text) el.textContent = text;
    const h = hot ? "true" : "false";
    if (el.dataset.hot !== h) el.dataset.hot = h;
  }

  function newCard(name) {
    const el = $("#origin-card").content.firstElementChild.cloneNode(true);
    el.dataset.origin = name;
    field(el, "name").textContent = name;
    const c = { el: el, rates: [], errors: [] };
    cards.set(name, c);
    return c;
  }

  function updateCard(c, o) {
    const el = c.el;
    el.dataset.status = o.status;
    const br = field(el, "breaker");
    br.dataset.state = o.breaker;
    const word = o.breaker === "disabled" ? "no breaker" : o.breaker.replace("_", "-");
    br.title = o.breaker === "disabled" ? "breaker disabled" : "breaker " + word;
    br.setAttribute("aria-label", br.title);
    field(el, "breaker-label").textContent = word;
    set(field(el, "rate"), fmtRate(o.requests_per_second), false);
    set(field(el, "error-share"), fmtShare(o.error_share), o.error_share != null && o.error_share > 0);
    set(field(el, "p50"), fmtMS(o.p50_ms), false);
    set(field(el, "p99"), fmtMS(o.p99_ms), false);
    const max = o.max_concurrent_requests;
    set(field(el, "bulkhead"), fmtInt(o.in_flight) + " / " + (max > 0 ? fmtInt(max) : "∞"),
      max > 0 && o.in_flight * 10 >= max * 9);
    const retries = field(el, "retries");
    set(retries, fmtRate(o.retries_per_second), o.retries_per_second > 0);
    retries.dataset.total = String(o.retries_total);
    retries.title = fmtInt(o.retries_total) + " retries since start";
    set(field(el, "servers"), o.servers_available + " / " + o.servers, o.servers > 0 && o.servers_available < o.servers);
    set(field(el, "ejected"), String(o.servers_ejected), o.servers_ejected > 0);
    set(field(el, "refused"), fmtRate(o.refused_per_second), o.refused_per_second > 0);
    const wr = o.breaker_window_requests;
    const idle = o.breaker === "disabled" ? "off" : o.breaker === "closed" ? "idle" : "–";
    set(field(el, "window"), wr > 0 ? fmtShare(o.breaker_window_errors / wr) + " of " + fmtInt(wr) : idle,
      wr > 0 && o.breaker_window_errors > 0);
    c.rates.push(o.requests_per_second);
    c.errors.push(o.error_share == null ? 0 : o.error_share);
    if (c.rates.length > HISTORY) { c.rates.shift(); c.errors.shift(); }
    drawSpark(field(el, "spark"), c.rates, c.errors);
  }

  // drawSpark draws the rate as a filled line scaled to its own maximum, and
  // the error share of each second as a red bar from the bottom (full height:
  // every request failed).
  function drawSpark(cv, rates, errors) {
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(cv.clientWidth, 50), h = Math.max(cv.clientHeight, 20);
    if (cv.width !== Math.round(w * dpr) || cv.height !== Math.round(h * dpr)) {
      cv.width = Math.round(w * dpr);
      cv.height = Math.round(h * dpr);
    }
    const g = cv.getContext("2d");
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    g.fillStyle = "#f0f2f5";
    g.fillRect(0, 0, w, h);
    const step = w / (HISTORY - 1);
    const x0 = w - (rates.length - 1) * step;
    g.fillStyle = "rgba(211,47,47,.55)";
    errors.forEach((e, i) => {
      if (e > 0) g.fillRect(x0 + i * step - step / 2, h - e * h, Math.max(step, 1), e * h);
    });
    const top = Math.max.apply(null, rates.concat([1]));
    const y = (v) => h - 2 - (v / top) * (h - 6);
    g.beginPath();
    rates.forEach((v, i) => (i ? g.lineTo(x0 + i * step, y(v)) : g.moveTo(x0, y(v))));
    g.strokeStyle = "#2f5fb3";
    g.lineWidth = 1.6;
    g.stroke();
    if (rates.length > 1) {
      g.lineTo(x0 + (rates.length - 1) * step, h);
      g.lineTo(x0, h);
      g.closePath();
      g.fillStyle = "rgba(47,95,179,.12)";
      g.fill();
    }
  }

  function renderOrigins(list) {
    const grid = $("#origins");
    const seen = new Set();
    list.forEach((o, i) => {
      seen.add(o.name);
      const c = cards.get(o.name) || newCard(o.name);
      if (grid.children[i] !== c.el) grid.insertBefore(c.el, grid.children[i] || null);
      updateCard(c, o);
    });
    for (const [name, c] of cards) {
      if (!seen.has(name)) { c.el.remove(); cards.delete(name); }
    }
    $("#no-origins").hidden = list.length > 0;
  }

  function renderFilters(list) {
    const body = $("#filters");
    const seen = new Set();
    list.forEach((f, i) => {
      seen.add(f.file);
      let tr = filterRows.get(f.file);
      if (!tr) {
        tr = document.createElement("tr");
        for (const name of ["name", "type", "calls-rate", "errors-rate", "mean-us", "calls", "errors", "time-ms"]) {
          const td = document.createElement("td");
          td.dataset.field = name;
          if (name !== "name" && name !== "type") td.className = "n";
          tr.appendChild(td);
        }
        filterRows.set(f.file, tr);
      }
      if (body.children[i] !== tr) body.insertBefore(tr, body.children[i] || null);
      tr.dataset.filter = f.name || f.file;
      tr.dataset.hot = f.errors_per_second > 0 ? "true" : "false";
      tr.dataset.disabled = f.disabled ? "true" : "false";
      tr.title = f.last_error ? f.file + ": " + f.last_error : f.file;
      field(tr, "name").textContent = f.name || f.file;
      field(tr, "type").textContent = f.type;
      field(tr, "calls-rate").textContent = fmtRate(f.calls_per_second);
      field(tr, "errors-rate").textContent = fmtRate(f.errors_per_second);
      field(tr, "mean-us").textContent = f.mean_time_us == null ? "–" : f.mean_time_us.toFixed(1);
      field(tr, "calls").textContent = fmtInt(f.calls_total);
      field(tr, "errors").textContent = fmtInt(f.errors_total);
      field(tr, "time-ms").textContent = fmtInt(Math.round(f.time_us_total / 1000));
    });
    for (const [file, tr] of filterRows) {
      if (!seen.has(file)) { tr.remove(); filterRows.delete(file); }
    }
    $("#no-filters").hidden = list.length > 0;
  }

  function render(ev) {
    lastEvent = Date.now();
    document.body.dataset.events = String(Number(document.body.dataset.events || 0) + 1);
    renderOrigins(ev.origins || []);
    renderFilters(ev.filters || []);
    set($('[data-field="origins-total"]'), String((ev.origins || []).length), false);
    set($('[data-field="origins-sick"]'), String(ev.sick_origins), ev.sick_origins > 0);
    set($('[data-field="push-connections"]'), fmtInt(ev.push.connections), false);
    set($('[data-field="push-rate"]'), fmtRate(ev.push.messages_per_second), false);
    $('[data-field="updated"]').textContent = "updated " + new Date(ev.time).toLocaleTimeString();
    setConnection("live", "live");
  }

  function setConnection(state, text) {
    const el = $('[data-field="connection"]');
    el.dataset.state = state;
    el.textContent = text;
  }

  function connect() {
    const es = new EventSource("/dashboard/stream");
    es.onmessage = (m) => {
      try { render(JSON.parse(m.data)); } catch (e) { setConnection("stale", "bad event: " + e.message); }
    };
    es.onerror = () => setConnection("stale", "reconnecting…");
  }

  setInterval(() => {
    if (lastEvent && Date.now() - lastEvent > STALE_MS) {
      setConnection("stale", "no data for " + Math.round((Date.now() - lastEvent) / 1000) + " s");
    }
  }, 1000);
  connect();
})();
