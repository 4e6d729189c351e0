/* vth-twin map: the data-quality view. Loaded by map.js when the "Data quality" tab is first opened, so the
 * default view never pays for it. Lists the rules and signals of /quality with their counts; choosing one
 * draws its failing records (/quality/{rule}, /quality/signals) coloured and sized by their number of open
 * issues, with the reasons in the tooltip; a record in the list or on the map flies there. */
(function () {
  "use strict";

  var map = globalThis.twinMap;
  var h = map.helpers;
  var el = h.el;
  var D = globalThis.deck;
  var CLASSES = map.cfg.theme.issues;  // [fewest issues, rgba, radius px] from frontend/theme.py
  var LIMIT = 2000;  // records drawn at once; the list says when a rule has more
  var LISTED = 100;

  var view = {summary: null, chosen: null, data: null, matched: 0, ticket: 0};

  function issueClass(n) {
    var chosen = CLASSES[0];
    CLASSES.forEach(function (c) { if (n >= c[0]) chosen = c; });
    return chosen;
  }

  function issuesOf(f) { return Number((f.properties || {}).quality_issues) || 1; }

  function recordId(f) {
    var p = f.properties || {};
    return p.record !== undefined ? p.record : f.id;
  }

  function centreOf(f) {
    if (f.geometry.type === "Point") return f.geometry.coordinates;
    var b = h.bboxOf(f.geometry);
    return [(b[0] + b[2]) / 2, (b[1] + b[3]) / 2];
  }

  function flyToRecord(f) {
    if (!f || !f.geometry) return;
    if (f.geometry.type === "Point") {
      var c = f.geometry.coordinates;
      map.flyTo({longitude: c[0], latitude: c[1], zoom: 15, pitch: 45});
    } else {
      h.flyToBounds(h.bboxOf(f.geometry), 16);
    }
    map.state.selection = {position: centreOf(f), radius: 60};  // the map's selection ring marks the record
    map.refresh();
    var reasons = (f.properties.quality_issue_list || []).map(function (i) { return i.reason; });
    h.say(recordId(f) + ": " + (reasons.join("; ") || f.properties.quality_reason || ""), "info");
  }

  // -------------------------------------------------------------------------------------------------
  // on the map
  function layers() {
    if (!view.data) return [];
    return [new D.GeoJsonLayer({
      id: "quality-records", data: view.data, pickable: true, filled: true, stroked: true,
      pointType: "circle", pointRadiusUnits: "pixels", lineWidthUnits: "pixels", getLineWidth: 1.5,
      getPointRadius: function (f) { return issueClass(issuesOf(f))[2]; },
      getFillColor: function (f) { return issueClass(issuesOf(f))[1]; },
      getLineColor: [27, 31, 36, 230],  // a dark ring: the light classes stay visible on the light land
      parameters: {depthTest: false},
      onClick: function (info) { flyToRecord(info.object); return true; }
    })];
  }

  function tooltip(info) {
    if (!info.layer || info.layer.id !== "quality-records" || !info.object) return null;
    var f = info.object;
    var p = f.properties || {};
    var list = p.quality_issue_list || [];
    var html = "<strong>" + h.escapeHtml(recordId(f)) + "</strong> <span>(" + h.escapeHtml(p.layer || view.layer || "") +
      ")</span><br>" + list.length + " open issue" + (list.length === 1 ? "" : "s") + "<ul>" +
      list.map(function (i) {
        return "<li><b>" + h.escapeHtml(i.title) + "</b>: " + h.escapeHtml(i.reason) + "</li>";
      }).join("") + "</ul><em>click to fly there</em>";
    return {html: html, className: "twin-tooltip", style: {}};
  }

  /* /quality/signals features, one per (signal, record): one feature per record, its signals as issues */
  function groupSignals(fc) {
    var byRecord = {};
    var out = [];
    (fc.features || []).forEach(function (f) {
      var p = f.properties;
      var key = p.layer + "/" + p.record;
      var g = byRecord[key];
      if (!g) {
        g = byRecord[key] = {type: "Feature", id: key, geometry: f.geometry,
          properties: {layer: p.layer, record: p.record, quality_issue_list: []}};
        out.push(g);
      }
      g.properties.quality_issue_list.push({rule: p.signal, title: p.title, reason: p.reason});
      g.properties.quality_issues = g.properties.quality_issue_list.length;
    });
    return {type: "FeatureCollection", features: out};
  }

  // -------------------------------------------------------------------------------------------------
  // the panel
  function pct(score) {
    if (score === null || score === undefined) return "–";
    return (100 * score).toFixed(score > 0.999 && score < 1 ? 2 : 1) + "%";  // 99.96%, never a rounded 100.0%
  }

  function plural(n, word) { return n + " " + word + (n === 1 ? "" : "s"); }

  function ruleButton(r) {
    var change = "";
    if (r.change && r.change.failed) {
      change = " · " + (r.change.failed > 0 ? "+" : "") + h.fmt(r.change.failed) + " since run " + r.change.previous_run;
    }
    var count = r.failed === null ? (r.applicable === false ? "does not apply: " : "not measured: ") + r.error
      : h.fmt(r.failed) + " of " + h.fmt(r.checked) + " fail";
    return el("li", null, [el("button", {
      type: "button", className: "site rule severity-" + r.severity, "data-rule": r.id,
      "aria-pressed": view.chosen === r.id ? "true" : "false", title: r.explanation,
      onclick: function () { choose(r.id, r.title, "/quality/" + encodeURIComponent(r.id) + "?limit=" + LIMIT); }
    }, [el("span", {className: "rule-title", text: r.title}),
      el("span", {className: "rule-count", text: count + " (" + pct(r.score) + ")" + change})])]);
  }

  function render() {
    var box = document.getElementById("quality-list");
    var s = view.summary;
    if (!s) return;
    var rules = [];
    s.layers.forEach(function (l) { rules = rules.concat(l.rules); });
    var signals = rules.filter(function (r) { return r.kind === "signal"; });
    var parts = [el("p", {className: "lead", text: plural(rules.length, "rule") + " on " + plural(s.layers.length, "layer") +
      ", " + plural(signals.length, "signal") + "."}),
    el("p", null, [el("button", {type: "button", className: "link", id: "quality-refresh",
      onclick: function () { load(true); }}, ["Measure again now"])])];
    parts.push(el("h3", {text: "Signals"}));
    if (signals.length) {
      var total = signals.reduce(function (n, r) { return n + (r.failed || 0); }, 0);
      var all = el("li", null, [el("button", {type: "button", className: "site rule", "data-rule": "signals",
        "aria-pressed": view.chosen === "signals" ? "true" : "false",
        onclick: function () { choose("signals", "All signals", "/quality/signals?limit=" + LIMIT); }},
      [el("span", {className: "rule-title", text: "All signals"}),
        el("span", {className: "rule-count", text: h.fmt(total) + " records"})])]);
      parts.push(el("ul", {className: "rules", id: "quality-signals"}, [all].concat(signals.map(ruleButton))));
    } else {
      parts.push(el("p", {className: "muted", text: "No signals for the layers you may read."}));
    }
    s.layers.forEach(function (l) {
      var own = l.rules.filter(function (r) { return r.kind !== "signal"; });
      if (!own.length) return;
      parts.push(el("h3", {text: l.title + " · " + pct(l.score)}));
      parts.push(el("ul", {className: "rules", "data-layer": l.layer}, own.map(ruleButton)));
    });
    parts.push(el("div", {id: "quality-records"}));
    box.replaceChildren.apply(box, parts);
    renderRecords();
  }

  function renderRecords() {
    var box = document.getElementById("quality-records");
    if (!box || !view.chosen) return;
    var parts = [el("h3", {text: view.title})];
    if (!view.data) {
      parts.push(el("p", {className: "muted", text: "Loading the records…"}));
      box.replaceChildren.apply(box, parts);
      return;
    }
    var feats = view.data.features;
    parts.push(el("p", {className: "muted", text: plural(view.matched, "record") + (view.matched > view.returned
      ? "; the first " + view.returned + " are drawn." : ".")}));
    var legend = map.cfg.theme.issueLegend;
    parts.push(el("ul", {className: "issue-legend", "aria-label": legend.title}, legend.swatches.map(function (s, i) {
      var size = 2 * CLASSES[i][2];
      return el("li", null, [el("span", {className: "dot", "aria-hidden": "true"}, [el("span", {className: "swatch circle",
        style: {background: h.rgba(s.color), width: size + "px", height: size + "px"}})]), s.label]);
    })));
    parts.push(el("ul", {className: "records"}, feats.slice(0, LISTED).map(function (f) {
      var p = f.properties;
      // this rule's reason (a signal group: all of its reasons); the other issues are in the tooltip
      var reason = p.quality_reason || (p.quality_issue_list || []).map(function (i) { return i.reason; }).join("; ");
      return el("li", null, [el("button", {type: "button", className: "site", "data-record": recordId(f),
        onclick: function () { flyToRecord(f); }},
      [el("strong", {text: String(recordId(f))}), " · " + plural(issuesOf(f), "open issue") + " · " + reason])]);
    })));
    parts.push(el("p", null, [el("button", {type: "button", className: "link", id: "quality-clear",
      onclick: clear}, ["Remove from the map"])]));
    box.replaceChildren.apply(box, parts);
  }

  function choose(id, title, url) {
    var ticket = ++view.ticket;
    view.chosen = id;
    view.title = title;
    view.data = null;
    render();
    map.refresh();
    return h.getJson(url).then(function (fc) {
      if (ticket !== view.ticket) return;
      view.layer = fc.layer || null;
      view.returned = fc.features.length;
      view.matched = fc.numberMatched !== undefined ? fc.numberMatched : view.returned;
      view.data = id === "signals" ? groupSignals(fc) : fc;
      renderRecords();
      map.refresh();
      h.say(title + ": " + plural(view.matched, "record") + (view.matched > view.returned
        ? ", the first " + view.returned + " on the map." : " on the map."), "info");
    }).catch(function (err) {
      if (ticket !== view.ticket) return;
      view.chosen = null;
      render();
      h.say(h.describeError(title, err), "error");
    });
  }

  function clear() {
    view.chosen = null;
    view.data = null;
    render();
    map.refresh();
  }

  function load(refresh) {
    var box = document.getElementById("quality-list");
    box.replaceChildren(el("p", {className: "muted", text: refresh ? "Measuring every rule now…" : "Loading the data quality…"}));
    return h.getJson("/quality" + (refresh ? "?refresh=true" : "")).then(function (s) {
      view.summary = s;
      render();
    }).catch(function (err) {
      box.replaceChildren(el("p", {className: "error", text: h.describeError("The data-quality summary", err)}));
    });
  }

  var css = document.getElementById("tab-quality").getAttribute("data-css");  // versioned URL from the page
  if (css) document.head.appendChild(el("link", {rel: "stylesheet", href: css}));
  map.extend({layers: layers, tooltip: tooltip});
  document.addEventListener("twin:apikey", function () { view.data = null; view.chosen = null; map.refresh(); load(false); });
  map.quality = {view: view, load: load, choose: choose, clear: clear};
  load(false);
})();
