/* vth-twin monitoring dashboard (/dashboard): the KPIs of supervision from /monitoring/kpis, drawn by Vega-Lite
 * through vega-embed with vega-interpreter (expressions evaluated without `new Function`: the page's CSP has no
 * 'unsafe-eval'). Every chart has its data as a table and its API request as a CSV download. The API key is
 * the map's (sessionStorage "twin-api-key", sent as X-API-Key): without one the API answers public figures
 * only, with disclosure-suppressed figures marked.
 * Marks for tests and the benchmark: body[data-first-chart] (ms from navigation to the first chart drawn) and
 * body[data-charts-drawn] (a counter raised after every complete redraw). */
(function () {
  "use strict";
  // the language: ?lang= wins and is remembered; without it, the language chosen earlier (here or on the map)
  try {
    var asked = new URLSearchParams(window.location.search).get("lang");
    var kept = localStorage.getItem("twin-lang");
    if (asked) localStorage.setItem("twin-lang", document.documentElement.lang);
    else if (kept && kept !== document.documentElement.lang && /^(nl|en)$/.test(kept)) {
      var u = new URL(window.location.href);
      u.searchParams.set("lang", kept);
      window.location.replace(u.toString());
      return;
    }
  } catch (e) { /* no storage: the language of the address */ }
  var C = JSON.parse(document.getElementById("dashboard-config").textContent);
  var M = C.messages;
  var LOCALE = M["lang.locale"] || "nl-NL";
  var state = {apiKey: null, kpis: [], kpi: null, draws: 0, views: {}};
  try { state.apiKey = sessionStorage.getItem("twin-api-key"); } catch (e) { state.apiKey = null; }

  function $(id) { return document.getElementById(id); }
  function t(key, params) {
    var msg = M[key];
    if (msg === undefined || msg === null) msg = key;
    if (typeof msg === "object") msg = msg[params && params.n === 1 ? "one" : "other"];
    return String(msg).replace(/\{(\w+)\}/g, function (all, name) {
      if (!params || params[name] === undefined || params[name] === null) return all;
      var v = params[name];
      return typeof v === "number" ? v.toLocaleString(LOCALE) : String(v);
    });
  }
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k];
      else if (k === "className") node.className = attrs[k];
      else node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { if (c !== null && c !== undefined) node.appendChild(c); });
    return node;
  }
  function headers(accept) {
    var h = {Accept: accept || "application/json"};
    if (state.apiKey) h["X-API-Key"] = state.apiKey;
    return h;
  }
  function getJson(url) {
    return fetch(url, {headers: headers()}).then(function (r) {
      if (!r.ok) {
        return r.json().catch(function () { return {}; }).then(function (body) {
          var err = new Error(body.detail || body.title || body.message || ("HTTP " + r.status));
          err.status = r.status;
          throw err;
        });
      }
      return r.json();
    });
  }

  /* ---- the API's answers, read tolerantly ------------------------------------------------------------- */
  function rowsOf(doc) {
    var rows = Array.isArray(doc) ? doc : (doc.values || doc.data || doc.items || doc.rows || []);
    return rows.map(function (r) {
      var suppressed = r.suppressed === true || (r.value === null || r.value === undefined);
      return {
        period_start: r.period_start, period_end: r.period_end, period_type: r.period_type,
        dimension: r.dimension, group: r.label || r.dimension_value || r.value_key || "",
        value: suppressed ? null : Number(r.value),
        ci_low: r.ci_low === null || r.ci_low === undefined ? null : Number(r.ci_low),
        ci_high: r.ci_high === null || r.ci_high === undefined ? null : Number(r.ci_high),
        numerator: r.numerator, denominator: r.denominator, change: r.change || null,
        scope_org: r.scope_org || null, suppressed: suppressed
      };
    });
  }
  function kpiUrl(kpi, by, extra) {
    var f = filters();
    var p = new URLSearchParams({period: f.period, by: by});
    if (f.org) p.set("org", f.org);
    Object.keys(extra || {}).forEach(function (k) { p.set(k, extra[k]); });
    return "/monitoring/kpis/" + encodeURIComponent(kpi) + "?" + p.toString();
  }
  function filters() {
    return {kpi: $("f-kpi").value || C.defaultKpi, org: $("f-org").value, period: $("f-period").value,
            sector: $("f-sector").value};
  }

  /* ---- formats ------------------------------------------------------------------------------------------- */
  var NL_FORMAT = {decimal: ",", thousands: ".", grouping: [3], currency: ["€ ", ""]};
  var NL_TIME = {
    dateTime: "%a %e %B %Y %X", date: "%d-%m-%Y", time: "%H:%M:%S", periods: ["", ""],
    days: ["zondag", "maandag", "dinsdag", "woensdag", "donderdag", "vrijdag", "zaterdag"],
    shortDays: ["zo", "ma", "di", "wo", "do", "vr", "za"],
    months: ["januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus", "september", "oktober",
             "november", "december"],
    shortMonths: ["jan", "feb", "mrt", "apr", "mei", "jun", "jul", "aug", "sep", "okt", "nov", "dec"]
  };
  function isShare() { return state.kpi && state.kpi.kind === "proportion"; }
  function fmt(v) {
    if (v === null || v === undefined || v === "") return "";
    var n = Number(v);
    if (isNaN(n)) return String(v);
    return isShare() ? n.toLocaleString(LOCALE, {style: "percent", maximumFractionDigits: 1})
                     : n.toLocaleString(LOCALE, {maximumFractionDigits: 1});
  }
  function periodLabel(r) {
    var d = String(r.period_start || "");
    var y = d.slice(0, 4), m = Number(d.slice(5, 7));
    var type = r.period_type || filters().period;
    if (type === "year") return y;
    if (type === "quarter") return y + (LOCALE.indexOf("nl") === 0 ? "-K" : "-Q") + (Math.floor((m - 1) / 3) + 1);
    return d.slice(0, 7);
  }

  /* ---- the charts' Vega-Lite specs ---------------------------------------------------------------------- */
  function yEncoding(title) {
    var enc = {field: "value", type: "quantitative", title: title};
    if (isShare()) { enc.axis = {format: ".0%"}; enc.scale = {domain: [0, 1]}; }
    return enc;
  }
  function timeAxis() {
    return {field: "date", type: "temporal", title: t("dashboard.col.period"),
            axis: {format: filters().period === "year" ? "%Y" : "%b %Y", labelOverlap: true}};
  }
  function withDates(rows) {
    return rows.map(function (r) {
      var o = Object.assign({}, r);
      o.date = r.period_start;
      o.period = periodLabel(r);
      return o;
    });
  }
  function trendSpec(rows, width) {
    var y = yEncoding(state.kpi ? kpiText(state.kpi, "title") : "");
    var layers = [];
    if (isShare()) {
      layers.push({mark: {type: "area", opacity: 0.25, color: "#1f6fb2"},
                   encoding: {x: timeAxis(), y: {field: "ci_low", type: "quantitative", title: y.title,
                                                  axis: y.axis, scale: y.scale},
                              y2: {field: "ci_high"}}});
    }
    layers.push({mark: {type: "line", color: "#1f6fb2", point: {filled: true, size: 30, color: "#1f6fb2"}},
                 encoding: {x: timeAxis(), y: y}});
    layers.push({transform: [{filter: "datum.change != null"}],
                 mark: {type: "point", shape: "diamond", size: 140, filled: true, color: "#b35806", aria: false},
                 encoding: {x: timeAxis(), y: {field: "value", type: "quantitative"}}});
    return {$schema: "https://vega.github.io/schema/vega-lite/v6.json", width: width, height: 260,
            data: {values: withDates(rows.filter(function (r) { return r.value !== null; }))}, layer: layers,
            description: t("dashboard.chart_label", {title: t("dashboard.trend")})};
  }
  /* Public figures of a restricted KPI that failed the disclosure control are not served: for a visitor
   * without a key, a (group, period) that the series has elsewhere but not here is marked as suppressed. */
  function markSuppressed(rows) {
    if (state.apiKey || !state.kpi || !state.kpi.restricted || !rows.length) return rows;
    var groups = {}, periods = {}, have = {};
    rows.forEach(function (r) {
      groups[r.group] = true;
      periods[r.period_start] = r;
      have[r.group + "|" + r.period_start] = true;
    });
    var out = rows.slice();
    Object.keys(groups).forEach(function (g) {
      Object.keys(periods).forEach(function (p) {
        if (have[g + "|" + p]) return;
        var ref = periods[p];
        out.push({period_start: p, period_end: ref.period_end, period_type: ref.period_type, dimension: ref.dimension,
                  group: g, value: null, ci_low: null, ci_high: null, numerator: null, denominator: null,
                  change: null, scope_org: null, suppressed: true});
      });
    });
    return out;
  }
  function latest(rows) {
    var last = rows.reduce(function (a, r) { return r.period_start > a ? r.period_start : a; }, "");
    return rows.filter(function (r) { return r.period_start === last; });
  }
  function barSpec(rows, width, highlight) {
    var data = rows.filter(function (r) { return r.value !== null; });
    var y = {field: "group", type: "nominal", title: t("dashboard.col.group"), sort: "-x"};
    var x = yEncoding(state.kpi ? kpiText(state.kpi, "title") : "");
    var color = highlight ? {condition: {test: {field: "group", equal: highlight}, value: "#b35806"},
                             value: "#1f6fb2"} : {value: "#1f6fb2"};
    var layers = [{mark: {type: "bar"}, encoding: {y: y, x: x, color: color}}];
    if (isShare()) {
      layers.push({mark: {type: "rule", color: "#333"},
                   encoding: {y: y, x: {field: "ci_low", type: "quantitative"}, x2: {field: "ci_high"}}});
    }
    return {$schema: "https://vega.github.io/schema/vega-lite/v6.json", width: width,
            height: {step: 16}, data: {values: data}, layer: layers};
  }
  function multiplesSpec(rows, width) {
    var totals = {};
    rows.forEach(function (r) { totals[r.group] = (totals[r.group] || 0) + (Number(r.denominator) || 0); });
    var groups = Object.keys(totals).sort(function (a, b) { return totals[b] - totals[a]; }).slice(0, 16);
    var keep = {};
    groups.forEach(function (g) { keep[g] = true; });
    var data = withDates(rows.filter(function (r) { return keep[r.group] && r.value !== null; }));
    var cols = Math.max(1, Math.min(4, Math.floor(width / 170)));
    var y = yEncoding("");
    return {$schema: "https://vega.github.io/schema/vega-lite/v6.json", data: {values: data},
            columns: cols, facet: {field: "group", type: "nominal", title: null, sort: groups},
            spec: {width: Math.floor(width / cols) - 50, height: 80,
                   mark: {type: "line", color: "#1f6fb2", point: {size: 12, color: "#1f6fb2"}},
                   encoding: {x: Object.assign(timeAxis(), {title: null}), y: y}},
            resolve: {scale: {y: "shared"}}};
  }

  /* ---- drawing ------------------------------------------------------------------------------------------ */
  var embedOptions = {
    renderer: "svg", actions: false, ast: true, expr: vegaInterpreter.expressionInterpreter,
    defaultStyle: false, tooltip: false, formatLocale: LOCALE.indexOf("nl") === 0 ? NL_FORMAT : undefined,
    timeFormatLocale: LOCALE.indexOf("nl") === 0 ? NL_TIME : undefined,
    config: {font: "system-ui, sans-serif", axis: {labelFontSize: 11, titleFontSize: 12}, view: {stroke: null}}
  };
  function draw(id, spec) {
    if (state.views[id]) { state.views[id].finalize(); delete state.views[id]; }
    return vegaEmbed("#vis-" + id, spec, embedOptions).then(function (result) {
      state.views[id] = result.view;
      if (!document.body.hasAttribute("data-first-chart")) {
        document.body.setAttribute("data-first-chart", String(Math.round(performance.now())));
      }
    });
  }
  function table(id, rows, withGroup) {
    var cols = [["period", "dashboard.col.period"], ["value", "dashboard.col.value"]];
    if (withGroup) cols.unshift(["group", "dashboard.col.group"]);
    if (isShare()) cols.push(["ci_low", "dashboard.col.ci_low"], ["ci_high", "dashboard.col.ci_high"]);
    cols.push(["numerator", "dashboard.col.numerator"], ["denominator", "dashboard.col.denominator"],
              ["change", "dashboard.col.change"]);
    var head = el("tr", {}, cols.map(function (c) { return el("th", {scope: "col", text: t(c[1])}); }));
    var body = rows.map(function (r) {
      return el("tr", {className: r.suppressed ? "suppressed" : ""}, cols.map(function (c) {
        var v;
        if (c[0] === "period") v = periodLabel(r);
        else if (c[0] === "group") v = r.group;
        else if (c[0] === "change") v = r.change ? t("dashboard.change." + r.change) : "";
        else if (c[0] === "value") v = r.suppressed ? t("dashboard.suppressed") : fmt(r.value);
        else if (c[0] === "numerator" || c[0] === "denominator") {
          v = r[c[0]] === null || r[c[0]] === undefined ? "" : Number(r[c[0]]).toLocaleString(LOCALE);
        } else v = fmt(r[c[0]]);
        return el(c[0] === "period" || c[0] === "group" ? "th" : "td",
                  c[0] === "period" || c[0] === "group" ? {scope: "row", text: v} : {text: v});
      }));
    });
    var caption = el("caption", {text: $("chart-" + id + "-h").textContent});
    var node = $("table-" + id);
    node.textContent = "";
    node.appendChild(el("table", {}, [caption, el("thead", {}, [head]), el("tbody", {}, body)]));
  }
  function csvLink(id, url) {
    var a = $("csv-" + id);
    var u = new URL(url, window.location.href);
    u.searchParams.set("f", "csv");
    a.href = u.pathname + u.search;
    a.setAttribute("download", "kpi-" + (state.kpi ? state.kpi.id : "") + "-" + id + ".csv");
  }
  function suppressedNote(id, rows) {
    var n = rows.filter(function (r) { return r.suppressed; }).length;
    $("suppressed-" + id).textContent = n ? t("dashboard.suppressed_count", {n: n}) : "";
  }
  function width(id) {
    var w = $("vis-" + id).clientWidth || 600;
    return Math.max(240, Math.min(w, 900) - 90);
  }

  function drawAll() {
    var f = filters();
    state.kpi = state.kpis.filter(function (k) { return k.id === f.kpi; })[0] || state.kpi;
    showDefinition();
    setStatus(t("dashboard.loading"));
    var kpi = f.kpi;
    var byTrend = f.sector ? "sector" : (f.org ? "organisation" : "all");
    var asked = {};
    function ask(by) {
      var url = kpiUrl(kpi, by);
      if (!asked[url]) asked[url] = getJson(url).then(function (doc) { return {doc: doc, rows: rowsOf(doc), url: url}; });
      return asked[url];
    }
    var jobs = C.charts.map(function (c) {
      var by = c.kind === "trend" ? byTrend : c.by;
      return ask(by).then(function (res) {
        var rows = res.rows;
        if (c.kind === "trend" && f.sector) rows = rows.filter(function (r) { return r.group === f.sector; });
        if (c.kind === "trend" && f.org && !f.sector) {
          rows = rows.filter(function (r) { return !r.scope_org || r.scope_org === f.org; });
        }
        if (c.id === "sector") updateSectors(res.rows);
        rows = markSuppressed(rows);
        if (c.kind === "bars") rows = latest(rows);
        rows.sort(function (a, b) {
          return a.group < b.group ? -1 : a.group > b.group ? 1 : (a.period_start < b.period_start ? -1 : 1);
        });
        csvLink(c.id, res.url);
        suppressedNote(c.id, rows);
        table(c.id, rows, c.kind !== "trend");
        var spec = c.kind === "trend" ? trendSpec(rows, width(c.id))
          : c.kind === "bars" ? barSpec(rows, width(c.id), c.id === "sector" ? f.sector : null)
            : multiplesSpec(rows, $("vis-" + c.id).clientWidth || 800);
        $("chart-" + c.id).setAttribute("data-rows", String(rows.length));
        if (res.doc && res.doc.run) runNote(res.doc.run);
        return draw(c.id, spec);
      });
    });
    return Promise.all(jobs).then(function () {
      setStatus("");
      state.draws += 1;
      document.body.setAttribute("data-charts-drawn", String(state.draws));
    }).catch(function (err) {
      setStatus(err.status === 401 || err.status === 403 ? t("dashboard.needs_key")
        : t("dashboard.error", {message: err.message}));
      state.draws += 1;
      document.body.setAttribute("data-charts-drawn", String(state.draws));
    });
  }
  /* a KPI's words in the page's language (kpi.<id>.<field> in the catalogue), else the API's */
  function kpiText(k, field) {
    var own = M["kpi." + k.id + "." + field];
    return own !== undefined ? own : (k[field] || (field === "title" ? k.id : ""));
  }
  function setStatus(msg) { $("status").textContent = msg; }
  function runNote(run) {
    if (!run || !run.as_of) return;
    $("audience-note").textContent = (state.apiKey ? "" : t("dashboard.public_note") + " ") +
      t("dashboard.as_of", {date: String(run.as_of), run: String(run.id === undefined ? "" : run.id)});
  }
  function showDefinition() {
    var k = state.kpi, box = $("definition");
    box.textContent = "";
    if (!k) return;
    var items = [["dashboard.question", kpiText(k, "question")], ["dashboard.formula", kpiText(k, "formula")],
                 ["dashboard.unit", kpiText(k, "unit")], ["dashboard.caveats", kpiText(k, "caveats")]];
    var dl = el("dl", {}, []);
    items.forEach(function (it) {
      if (!it[1]) return;
      dl.appendChild(el("dt", {text: t(it[0])}));
      dl.appendChild(el("dd", {text: it[1]}));
    });
    box.appendChild(el("h3", {text: t("dashboard.definition") + ": " + kpiText(k, "title")}));
    box.appendChild(dl);
    if (k.restricted) box.appendChild(el("p", {className: "note", text: t("dashboard.restricted")}));
    $("audience-note").textContent = state.apiKey ? "" : t("dashboard.public_note");
  }
  function fillSelect(select, values, keepFirst) {
    var current = select.value;
    while (select.options.length > (keepFirst ? 1 : 0)) select.remove(select.options.length - 1);
    values.forEach(function (v) { select.appendChild(el("option", {value: v[0], text: v[1]})); });
    if (values.some(function (v) { return v[0] === current; })) select.value = current;
  }
  function updateSectors(rows) {
    var seen = {};
    rows.forEach(function (r) { if (r.group) seen[r.group] = true; });
    fillSelect($("f-sector"), Object.keys(seen).sort().map(function (s) { return [s, s]; }), true);
  }
  function loadOrganisations() {
    var p = new URLSearchParams({period: "year", by: "organisation"});
    return getJson("/monitoring/kpis/" + encodeURIComponent(filters().kpi) + "?" + p.toString())
      .then(function (doc) {
        var seen = {};
        rowsOf(doc).forEach(function (r) { if (r.group && r.group !== "(unknown)") seen[r.group] = true; });
        fillSelect($("f-org"), Object.keys(seen).sort().map(function (o) { return [o, o]; }), true);
      }).catch(function () { /* no organisations to choose: the filter keeps "all" */ });
  }

  function start() {
    var params = new URLSearchParams(window.location.search);
    ["kpi", "org", "period", "sector"].forEach(function (k) {
      if (params.get(k)) $("f-" + k).setAttribute("data-wanted", params.get(k));
    });
    if (params.get("period")) $("f-period").value = params.get("period");
    getJson("/monitoring/kpis").then(function (doc) {
      state.kpis = Array.isArray(doc) ? doc : (doc.kpis || doc.items || []);
      fillSelect($("f-kpi"), state.kpis.map(function (k) { return [k.id, kpiText(k, "title")]; }), false);
      $("f-kpi").value = params.get("kpi") || C.defaultKpi;
      if (!$("f-kpi").value && state.kpis.length) $("f-kpi").value = state.kpis[0].id;
      var wantedOrg = params.get("org"), wantedSector = params.get("sector");
      var orgs = loadOrganisations();
      if (!wantedOrg && !wantedSector) return drawAll();  // the organisations arrive meanwhile
      return Promise.all([orgs, wantedSector ? ask0() : null]).then(function () {
        if (wantedOrg) $("f-org").value = wantedOrg;
        if (wantedSector) $("f-sector").value = wantedSector;
        return drawAll();
      });
    }).catch(function (err) {
      setStatus(t("dashboard.error", {message: err.message}));
      document.body.setAttribute("data-charts-drawn", "0");
    });
    function ask0() {
      return getJson(kpiUrl(filters().kpi, "sector")).then(function (doc) { updateSectors(rowsOf(doc)); });
    }
    $("filters").addEventListener("submit", function (e) { e.preventDefault(); changed(); });
    ["f-kpi", "f-org", "f-period", "f-sector"].forEach(function (id) { $(id).addEventListener("change", changed); });
    document.addEventListener("click", function (e) {
      var a = e.target.closest && e.target.closest("a.csv");
      if (!a || !state.apiKey) return;
      // with a key: the CSV is fetched with it (a plain link would send none) and saved from memory
      e.preventDefault();
      fetch(a.getAttribute("href"), {headers: headers("text/csv")}).then(function (r) { return r.blob(); })
        .then(function (blob) {
          var url = URL.createObjectURL(blob);
          var tmp = el("a", {href: url, download: a.getAttribute("download")});
          document.body.appendChild(tmp);
          tmp.click();
          tmp.remove();
          setTimeout(function () { URL.revokeObjectURL(url); }, 1000);
        });
    });
    $("api-key-form").addEventListener("submit", function (e) {
      e.preventDefault();
      state.apiKey = $("api-key").value.trim() || null;
      try {
        if (state.apiKey) sessionStorage.setItem("twin-api-key", state.apiKey);
        else sessionStorage.removeItem("twin-api-key");
      } catch (err) { /* this page only */ }
      setStatus(state.apiKey ? t("access.set") : t("access.removed"));
      loadOrganisations().then(drawAll);
    });
    $("lang-switch").addEventListener("click", function () {
      try { localStorage.setItem("twin-lang", this.getAttribute("data-lang")); } catch (err) { /* not kept */ }
    });
  }
  var pending = null;
  function changed() {
    var f = filters();
    var u = new URL(window.location.href);
    ["kpi", "org", "period", "sector"].forEach(function (k) { if (f[k]) u.searchParams.set(k, f[k]); else u.searchParams.delete(k); });
    history.replaceState(null, "", u.pathname + u.search);
    if (pending) return;
    pending = Promise.resolve().then(function () {
      pending = null;
      return drawAll();
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
