/* vth-twin map: the data-quality view. Loaded by map.js when the "Data quality" tab is first opened, so the
 * default view never pays for it. Lists the rules and signals of /quality with their counts; choosing one
 * draws its failing records (/quality/{rule}, /quality/signals) coloured and sized by their number of open
 * issues, with the reasons in the tooltip; a record in the list or on the map flies there. */
(function () {
  "use strict";

  var map = globalThis.twinMap;
  var h = map.helpers;
  var el = h.el;
  var t = h.t;
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

  /* a rule's words in the page's language: the catalogue's (quality.rule.<id>.title), else the API's English */
  function ruleTitle(id, fallback) {
    var own = map.cfg.messages["quality.rule." + id + ".title"];
    return own !== undefined ? own : (fallback || id);
  }
  function ruleExplanation(id, fallback) {
    var own = map.cfg.messages["quality.rule." + id + ".explanation"];
    return own !== undefined ? own : (fallback || "");
  }
  function layerTitle(l) {
    var own = map.cfg.messages["layer." + l.layer];
    return own !== undefined ? t("layer." + l.layer, {zoom: ""}).replace(/ \(zoom \+\)$/, "") : (l.title || l.layer);
  }
  /* why a rule was not measured, as the API words it (twin.quality / api.routes.quality), in the page's language */
  function noteText(note) {
    if (!note) return "";
    var m = /^(.+) holds no records$/.exec(note);
    if (m) return t("quality.note.empty", {layers: layerNames(m[1])});
    m = /^needs (.+), which holds no records$/.exec(note);
    if (m) return t("quality.note.needs", {layers: layerNames(m[1])});
    m = /^the database lacks (.+) \(an older schema/.exec(note);
    if (m) return t("quality.note.schema", {what: m[1]});
    return note;
  }
  function layerNames(list) {
    return list.split(", ").map(function (id) {
      return map.cfg.messages["layer." + id] !== undefined ? layerTitle({layer: id}) : id;
    }).join(", ");
  }

  /* A record's reason as the rule's SQL writes it (English, layers/quality_rules.py, twin/quality/generic.py),
   * in the page's words for the signals and the common generic rules; other reasons stay as written. */
  var DATE = "(\\d{4}-\\d{2}-\\d{2})";
  function field(name) { return map.cfg.messages["field." + name] !== undefined ? t("field." + name) : name; }
  function day(iso) { return h.fmt(iso); }
  function lastPermit(text) {
    if (text === "no permit at all") return t("quality.reason.no_permit");
    var m = new RegExp("^latest permit (.+) is '(.+?)'(?: until " + DATE + ")?$").exec(text);
    if (!m) return text;
    return t("quality.reason.latest_permit", {id: m[1], status: m[2], until: m[3] ? t("quality.reason.until", {date: day(m[3])}) : ""});
  }
  var REASONS = [
    [/^SBI (\S+) \((livestock|industrial)\): no permit with status 'verleend' valid today; (.*)$/, function (m) {
      return t("quality.reason.without_permit", {sbi: m[1], sector: t("quality.reason.sector." + m[2]), last: lastPermit(m[3])});
    }],
    [/^the same KvK number is registered for (\S+) at ([\d.]+) km$/, function (m) {
      return t("quality.reason.kvk_far", {id: m[1], km: Number(m[2])});
    }],
    [/^lies (\d+) m from its address \(the BAG address with its postcode and house number\)$/, function (m) {
      return t("quality.reason.address_far", {m: Number(m[1])});
    }],
    [new RegExp("^status 'verleend' (without end date|until " + DATE + ") but establishment (\\S+) ended on " + DATE + "$"), function (m) {
      return t("quality.reason.ended_permit", {term: m[2] ? t("quality.reason.until_plain", {date: day(m[2])}) : t("quality.reason.no_end"),
        id: m[3], date: day(m[4])});
    }],
    [new RegExp("^violation of " + DATE + ", repair deadline " + DATE + ": no inspection since and (no enforcement measure|the measure '(.+)' was withdrawn)$"), function (m) {
      return t("quality.reason.no_follow_up", {date: day(m[1]), deadline: day(m[2]),
        measure: m[4] ? t("quality.reason.withdrawn", {measure: m[4]}) : t("quality.reason.no_measure")});
    }],
    [/^(\w+) is empty$/, function (m) { return t("quality.reason.empty", {field: field(m[1])}); }],
    [/^(\w+) '(.*)' is not in the code list$/, function (m) { return t("quality.reason.not_in_list", {field: field(m[1]), value: m[2]}); }],
    [/^the geometry is empty$/, function () { return t("quality.reason.geometry_empty"); }],
    [/^invalid geometry: (.*)$/, function (m) { return t("quality.reason.geometry_invalid", {why: m[1]}); }],
    [/^lies outside every municipality \(at (-?\d+), (-?\d+) in RD New\)$/, function (m) { return t("quality.reason.outside", {x: m[1], y: m[2]}); }],
    [/^loaded outside a recorded ingest run$/, function () { return t("quality.reason.no_run"); }],
    [new RegExp("^latest delivery of (.+) on " + DATE + ", (\\d+) days ago$"), function (m) {
      return t("quality.reason.delivery", {source: m[1], date: day(m[2]), days: Number(m[3])});
    }],
    [/^lies (\d+) m from its establishment (\S+)$/, function (m) { return t("quality.reason.from_establishment", {m: Number(m[1]), id: m[2]}); }],
    [/^no building within (\d+) m$/, function (m) { return t("quality.reason.no_building", {m: Number(m[1])}); }],
    [/^lies in no building$/, function () { return t("quality.reason.in_no_building"); }]
  ];
  function reasonText(reason) {
    if (!reason || map.cfg.lang === "en") return reason || "";
    for (var i = 0; i < REASONS.length; i++) {
      var m = REASONS[i][0].exec(reason);
      if (m) return REASONS[i][1](m);
    }
    return reason;
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
    var reasons = (f.properties.quality_issue_list || []).map(function (i) { return reasonText(i.reason); });
    h.say(recordId(f) + ": " + (reasons.join("; ") || reasonText(f.properties.quality_reason) || ""), "info");
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
    var html = "<strong>" + h.escapeHtml(recordId(f)) + "</strong> <span>(" + h.escapeHtml(layerTitle({layer: p.layer || view.layer || ""})) +
      ")</span><br>" + h.escapeHtml(t("quality.open_issues", {n: list.length})) + "<ul>" +
      list.map(function (i) {
        return "<li><b>" + h.escapeHtml(ruleTitle(i.rule, i.title)) + "</b>: " + h.escapeHtml(reasonText(i.reason)) + "</li>";
      }).join("") + "</ul><em>" + h.escapeHtml(t("quality.click")) + "</em>";
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
  /* a share as a percentage; 0.04% rather than a rounded 0.0%, 99.96% rather than a rounded 100.0% */
  function pct(share) {
    if (share === null || share === undefined || isNaN(share)) return "–";
    var p = 100 * share;
    var digits = (p > 0 && p < 0.1) || (p > 99.9 && p < 100) ? 2 : 1;
    return new Intl.NumberFormat(map.cfg.messages["lang.locale"] || "nl-NL",
      {minimumFractionDigits: digits, maximumFractionDigits: digits}).format(p) + "%";
  }

  /* "9 of 374 fail (2.4%)": the count and share that fail (not the share that passes) */
  function countText(r) {
    if (r.failed === null || r.failed === undefined) {
      return t(r.applicable === false ? "quality.not_applicable" : "quality.not_measured", {error: noteText(r.error || "")});
    }
    return t("quality.fail", {failed: r.failed, checked: r.checked, share: pct(r.checked ? r.failed / r.checked : null)});
  }

  function ruleButton(r) {
    var change = "";
    if (r.change && r.change.failed) {
      change = " · " + t("quality.change", {change: (r.change.failed > 0 ? "+" : "−") + h.num(Math.abs(r.change.failed)),
        run: String(r.change.previous_run)});
    }
    // the stripe shows the severity of a rule that fails; a rule that nothing fails is not marked
    var severity = r.failed ? "severity-" + r.severity : (r.failed === 0 ? "severity-pass" : "severity-unknown");
    var chosen = view.chosen === r.id;
    return el("li", null, [el("button", {
      type: "button", className: "site rule " + severity, "data-rule": r.id,
      "aria-pressed": chosen ? "true" : "false", title: ruleExplanation(r.id, r.explanation),
      onclick: function () { choose(r.id, ruleTitle(r.id, r.title), "/quality/" + encodeURIComponent(r.id) + "?limit=" + LIMIT); }
    }, [el("span", {className: "rule-title", text: ruleTitle(r.id, r.title)}),
      el("span", {className: "rule-count", text: countText(r) + change})]), chosen ? recordsBox() : null]);
  }

  /* the records of the chosen rule or signal, right under its button (not at the end of the side bar) */
  function recordsBox() { return el("div", {id: "quality-records", className: "records-box"}); }

  function plural(n, key) { return t(key, {n: n}); }

  function render() {
    var box = document.getElementById("quality-list");
    var s = view.summary;
    if (!s) return;
    var rules = [];
    s.layers.forEach(function (l) { rules = rules.concat(l.rules); });
    var signals = rules.filter(function (r) { return r.kind === "signal"; });
    var parts = [el("p", {className: "lead", text: t("quality.summary", {rules: plural(rules.length, "quality.rules"),
      layers: plural(s.layers.length, "quality.layers"), signals: plural(signals.length, "quality.signals_n")})}),
    map.who().role === "admin" ? el("p", null, [el("button", {type: "button", className: "link",
      id: "quality-refresh", onclick: measure}, [t("quality.again")])]) : null];
    parts.push(el("h3", {text: t("quality.signals")}));
    if (signals.length) {
      var total = signals.reduce(function (n, r) { return n + (r.failed || 0); }, 0);
      var all = el("li", null, [el("button", {type: "button", className: "site rule", "data-rule": "signals",
        "aria-pressed": view.chosen === "signals" ? "true" : "false",
        onclick: function () { choose("signals", t("quality.all_signals"), "/quality/signals?limit=" + LIMIT); }},
      [el("span", {className: "rule-title", text: t("quality.all_signals")}),
        el("span", {className: "rule-count", text: plural(total, "quality.records_n")})]),
        view.chosen === "signals" ? recordsBox() : null]);
      parts.push(el("ul", {className: "rules", id: "quality-signals"}, [all].concat(signals.map(ruleButton))));
    } else {
      parts.push(el("p", {className: "muted", text: t("quality.no_signals")}));
    }
    s.layers.forEach(function (l) {
      var own = l.rules.filter(function (r) { return r.kind !== "signal"; });
      if (!own.length) return;
      parts.push(el("h3", {text: t("quality.layer_score", {title: layerTitle(l), share: pct(l.score)})}));
      parts.push(el("ul", {className: "rules", "data-layer": l.layer}, own.map(ruleButton)));
    });
    box.replaceChildren.apply(box, parts);
    renderRecords();
  }

  function renderRecords() {
    var box = document.getElementById("quality-records");
    if (!box || !view.chosen) return;
    var parts = [el("h4", {text: t("quality.records_of", {title: view.title})})];
    if (!view.data) {
      parts.push(el("p", {className: "muted", text: t("quality.loading_records")}));
      box.replaceChildren.apply(box, parts);
      return;
    }
    var feats = view.data.features;
    parts.push(el("p", {className: "muted", text: plural(view.matched, "quality.records_n") + (view.matched > view.returned
      ? t("quality.first_drawn", {n: view.returned}) : ".")}));
    var legend = map.cfg.theme.issueLegend;
    parts.push(el("ul", {className: "issue-legend", "aria-label": legend.title}, legend.swatches.map(function (s, i) {
      var size = 2 * CLASSES[i][2];
      return el("li", null, [el("span", {className: "dot", "aria-hidden": "true"}, [el("span", {className: "swatch circle",
        style: {background: h.rgba(s.color), width: size + "px", height: size + "px"}})]), s.label]);
    })));
    parts.push(el("ul", {className: "records"}, feats.slice(0, LISTED).map(function (f) {
      var p = f.properties;
      // this rule's reason (a signal group: all of its reasons); the other issues are in the tooltip
      var reason = p.quality_reason ? reasonText(p.quality_reason)
        : (p.quality_issue_list || []).map(function (i) { return reasonText(i.reason); }).join("; ");
      return el("li", null, [el("button", {type: "button", className: "site", "data-record": recordId(f),
        onclick: function () { flyToRecord(f); }},
      [el("strong", {text: String(recordId(f))}), " · " + plural(issuesOf(f), "quality.open_issues") + " · " + reason])]);
    })));
    parts.push(el("p", null, [el("button", {type: "button", className: "link", id: "quality-clear",
      onclick: clear}, [t("quality.remove")])]));
    box.replaceChildren.apply(box, parts);
  }

  function choose(id, title, url) {
    var ticket = ++view.ticket;
    view.chosen = id;
    view.title = title;
    view.data = null;
    var hadFocus = document.activeElement && document.activeElement.getAttribute("data-rule") === id;
    render();
    map.refresh();
    var again = document.querySelector('#quality-list button[data-rule="' + id + '"]');
    if (again && hadFocus) again.focus();  // the list was redrawn: the keyboard stays on the chosen rule
    return h.getJson(url).then(function (fc) {
      if (ticket !== view.ticket) return;
      view.layer = fc.layer || null;
      view.returned = fc.features.length;
      view.matched = fc.numberMatched !== undefined ? fc.numberMatched : view.returned;
      view.data = id === "signals" ? groupSignals(fc) : fc;
      renderRecords();
      map.refresh();
      h.say(view.matched > view.returned
        ? t("quality.first_on_map", {title: title, records: plural(view.matched, "quality.records_n"), n: view.returned})
        : t("quality.on_map", {title: title, records: plural(view.matched, "quality.records_n")}), "info");
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

  /* Measure every rule again (admins): a job on the server (POST /quality/measurements), followed to its end,
   * then the summary with the counts it recorded. Measuring within one request (?refresh=true) would outlast
   * the statement timeout on a national twin. */
  function measure() {
    var box = document.getElementById("quality-list");
    var status = function (text) { box.replaceChildren(el("p", {className: "muted", role: "status", text: text})); };
    status(t("quality.measuring"));
    function follow(job) {
      if (job.status === "running") {
        if (job.rules_total) status(t("quality.measuring_progress", {done: h.num(job.rules_done),
          total: h.num(job.rules_total)}));
        return new Promise(function (done) { setTimeout(done, 1000); }).then(function () {
          return h.getJson("/quality/measurements/" + encodeURIComponent(job.id));
        }).then(follow);
      }
      if (job.status === "failed") throw new Error(job.error || job.status);
      return load();
    }
    return h.postJson("/quality/measurements").then(follow).catch(function (err) {
      box.replaceChildren(el("p", {className: "error", text: h.describeError(t("quality.summary_name"), err)}));
    });
  }

  function load() {
    var box = document.getElementById("quality-list");
    box.replaceChildren(el("p", {className: "muted", text: t("quality.loading")}));
    return h.getJson("/quality").then(function (s) {
      view.summary = s;
      render();
    }).catch(function (err) {
      box.replaceChildren(el("p", {className: "error", text: h.describeError(t("quality.summary_name"), err)}));
    });
  }

  var css = document.getElementById("tab-quality").getAttribute("data-css");  // versioned URL from the page
  if (css) document.head.appendChild(el("link", {rel: "stylesheet", href: css}));
  map.extend({layers: layers, tooltip: tooltip});
  document.addEventListener("twin:apikey", function () { view.data = null; view.chosen = null; map.refresh(); load(); });
  document.addEventListener("twin:who", function () { render(); });  // the admin's button comes and goes with the role
  map.quality = {view: view, load: load, choose: choose, clear: clear, measure: measure};
  load();
})();
