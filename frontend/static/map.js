/* vth-twin map: renders the pydeck JSON of the page with pydeck's deck.gl bundle and adds the controls:
 * layer toggles, legend, year selectors, tooltips, the area-context panel, search and the housing view.
 * Every fetch goes to the app's own origin; a failing fetch shows a message, never a broken page. */
(function () {
  "use strict";

  var D = globalThis.deck;
  var cfg = JSON.parse(document.getElementById("twin-config").textContent);
  var metaById = {};
  cfg.layers.forEach(function (m) { metaById[m.id] = m; });
  var T0 = 0;  // metrics are milliseconds since navigation start
  var M = cfg.messages || {};  // the message catalogue of the page's language (layers/data/messages)
  var LOCALE = M["lang.locale"] || "nl-NL";
  var NUMBER = new Intl.NumberFormat(LOCALE, {maximumFractionDigits: 0});
  var DECIMAL = new Intl.NumberFormat(LOCALE, {maximumFractionDigits: 2});
  var PERCENT = new Intl.NumberFormat(LOCALE, {style: "percent", minimumFractionDigits: 1, maximumFractionDigits: 1});
  var DATE = new Intl.DateTimeFormat(LOCALE, {day: "numeric", month: "long", year: "numeric", timeZone: "UTC"});

  var metrics = {firstRender: null, firstFrame: null, frames: 0, loaded: {}, tileErrors: {}};
  var state = {
    visible: {},
    year: null,
    inspectionYear: null,
    viewState: Object.assign({}, cfg.deck.initialViewState),
    establishmentColor: "category",
    priority: null,
    priorityVersion: 0,
    housing: null,
    housingError: null,
    selection: null,
    apiKey: null
  };
  cfg.layers.forEach(function (m) { state.visible[m.id] = m.visible; });
  try { state.apiKey = sessionStorage.getItem("twin-api-key"); } catch (e) { state.apiKey = null; }

  // ---------------------------------------------------------------------------------------------------
  // helpers
  function $(id) { return document.getElementById(id); }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        if (k === "text") node.textContent = attrs[k];
        else if (k === "className") node.className = attrs[k];
        else if (k === "style") Object.assign(node.style, attrs[k]);  // CSSOM: allowed by the page's CSP
        else if (k.slice(0, 2) === "on") node.addEventListener(k.slice(2), attrs[k]);
        else if (attrs[k] !== null && attrs[k] !== undefined && attrs[k] !== false) node.setAttribute(k, attrs[k]);
      });
    }
    (children || []).forEach(function (c) {
      if (c === null || c === undefined) return;
      node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return node;
  }

  /* a message of the catalogue with its {placeholders} filled; numbers are written the page's way (2.030),
   * so years and ids are passed as strings. A plural message {one, other} is chosen by params.n. */
  function t(key, params) {
    var msg = M[key];
    if (msg === undefined || msg === null) msg = key;
    if (typeof msg === "object") msg = params && params.n === 1 ? msg.one : msg.other;
    return String(msg).replace(/\{(\w+)\}/g, function (whole, name) {
      var v = params ? params[name] : undefined;
      if (v === undefined || v === null) return whole;
      return typeof v === "number" ? num(v) : String(v);
    });
  }

  function num(v) { return Math.abs(v) >= 100 || Number.isInteger(v) ? NUMBER.format(Math.round(v)) : DECIMAL.format(v); }
  function pct(share) { return PERCENT.format(share); }

  /* fields whose numbers are names, not quantities: years, ids, codes (no thousands separator) */
  var PLAIN_NUMBER = /^(year|planned_year|construction_year|decided_year|number|house_number|kvk_number|code)$|_id$|_code$/;
  function fmtDate(iso) {
    var d = new Date(iso.slice(0, 10) + "T00:00:00Z");
    return isNaN(d.getTime()) ? iso : DATE.format(d);
  }

  function rgba(c) {
    return "rgba(" + c[0] + "," + c[1] + "," + c[2] + "," + ((c.length > 3 ? c[3] : 255) / 255).toFixed(3) + ")";
  }

  /* a value as the page shows it; ``field`` (a field name) keeps years and ids without separators */
  function fmt(value, unit, field) {
    if (value === null || value === undefined || value === "") return "–";
    var text;
    if (typeof value === "number") {
      text = field && PLAIN_NUMBER.test(field) ? String(value) : num(value);
    } else if (typeof value === "string" && field && M["value." + field + "." + value] !== undefined) {
      text = t("value." + field + "." + value);  // a code in the page's words (an inspection's kind)
    } else if (typeof value === "string" && /^\d{4}-\d{2}-\d{2}(T|$)/.test(value)) {
      text = fmtDate(value);
    } else if (typeof value === "boolean") {
      text = value ? t("value.yes") : t("value.no");
    } else if (Array.isArray(value)) {
      text = value.map(function (v) { return typeof v === "object" ? JSON.stringify(v) : String(v); }).join("; ");
    } else if (typeof value === "object") {
      text = JSON.stringify(value);
    } else {
      text = String(value);
    }
    return unit ? text + " " + unit : text;
  }

  /* a code the API sends (a status, a kind) in the page's words: the catalogue's ``prefix + code``, else the code */
  function codeLabel(prefix, code) {
    return M[prefix + code] !== undefined ? t(prefix + code) : String(code);
  }

  function escapeHtml(s) {
    return String(s).replace(/[&<>"']/g, function (c) {
      return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c];
    });
  }

  function withParam(url, name, value) {
    var u = new URL(url, window.location.href);
    if (value === null || value === undefined) u.searchParams.delete(name);
    else u.searchParams.set(name, value);
    var s = decodeURI(u.pathname) + (u.search ? "?" + decodeURIComponent(u.search.slice(1)) : "");
    return u.origin === window.location.origin && url.charAt(0) === "/" ? s : u.origin + s;
  }

  function authHeaders() {
    return state.apiKey ? {"X-API-Key": state.apiKey} : {};
  }

  // ---------------------------------------------------------------------------------------------------
  // the key and the caller: /whoami says who the API takes us for (shown as a badge, always); a key the API
  // refuses (401: unknown, expired, revoked) is dropped at once, so that the public layers stay visible, and
  // the map says so.
  var who = {role: "anonymous", org_code: null, authenticated: false};
  function storeKey(key) {
    state.apiKey = key || null;
    try {
      if (state.apiKey) sessionStorage.setItem("twin-api-key", state.apiKey); else sessionStorage.removeItem("twin-api-key");
    } catch (err) { /* private mode: keep it in memory */ }
  }
  var rankedFor = "anonymous/";
  function renderWho() {
    var caller = who.role + "/" + (who.org_code || "");
    if (caller !== rankedFor) {  // another caller: the ranking (and whether there is one) is theirs
      rankedFor = caller;
      forgetPriority();
      if (typeof deckgl !== "undefined") refresh();
    }
    var label = t("role." + who.role) + (who.org_code ? t("role.org", {org: who.org_code}) : "");
    Array.prototype.forEach.call(document.querySelectorAll("[data-who]"), function (n) { n.textContent = label; });
    var badge = $("who");
    if (badge) badge.classList.toggle("authenticated", !!who.authenticated);
    document.dispatchEvent(new CustomEvent("twin:who", {detail: who}));
  }
  function keyState(message, kind) {
    var box = $("key-state");
    if (!box) return;
    box.textContent = message || "";
    box.className = "key-state" + (kind ? " " + kind : "");
  }
  var keyCheck = null;
  /* asks /whoami with the current key; resolves true when the key (if any) is valid. An invalid key is dropped. */
  function checkKey() {
    if (keyCheck) return keyCheck;
    var sent = state.apiKey;
    keyCheck = fetch("/whoami", {headers: Object.assign({Accept: "application/json"}, authHeaders())}).then(function (r) {
      if (r.status === 401 && sent) {
        if (state.apiKey === sent) dropKey();
        return false;
      }
      return r.ok ? r.json().then(function (w) { who = w; renderWho(); return true; }) : true;
    }, function () { return true; }).then(function (ok) { keyCheck = null; return ok; });
    return keyCheck;
  }
  function dropKey() {
    storeKey(null);
    who = {role: "anonymous", org_code: null, authenticated: false};
    renderWho();
    keyState(t("access.invalid_short"), "error");
    say(t("access.invalid"), "error");
    var access = $("access");
    if (access) access.open = true;
    reported = {};
    refresh();
    document.dispatchEvent(new CustomEvent("twin:apikey"));
  }

  /* a restricted layer switched on without an API key: not requested, its toggle says why */
  function lacksKey(id) {
    return !state.apiKey && !!(metaById[id] && metaById[id].restricted);
  }
  function noteRestricted() {
    cfg.layers.forEach(function (m) {
      var item = document.querySelector('[data-layer-note="' + m.id + '"]');
      if (!item || !m.restricted) return;
      item.textContent = state.visible[m.id] && !state.apiKey ? t("note.needs_key") : "";
    });
  }

  var statusTimer = null;
  function say(message, kind) {
    var box = $("status");
    box.textContent = message;
    box.className = "status " + (kind || "info");
    box.hidden = !message;
    if (statusTimer) clearTimeout(statusTimer);
    if (message && kind !== "error") statusTimer = setTimeout(function () { box.hidden = true; }, 6000);
  }

  /* fetch JSON from the app; rejects with an Error whose message is the API's description. */
  function getJson(url, retried) {
    var early = !retried && globalThis.twinBoot && globalThis.twinBoot.take(url);  // started by boot.js
    var sent = state.apiKey;
    var request = early || fetch(url, {headers: Object.assign({Accept: "application/json"}, authHeaders())});
    return request.then(function (r) {
      if (r.status === 401 && !retried && (sent || early)) {
        // the key was refused: check it (an invalid key is dropped) and ask again with what is left
        return checkKey().then(function (valid) {
          if (valid && state.apiKey === sent && !early) return r;
          return fetch(url, {headers: Object.assign({Accept: "application/json"}, authHeaders())});
        });
      }
      return r;
    }).then(jsonOf);
  }

  /* the JSON body of a response; rejects with an Error whose message is the API's description */
  function jsonOf(r) {
    return r.text().then(function (text) {
      var body = null;
      try { body = text ? JSON.parse(text) : null; } catch (e) { body = null; }
      if (!r.ok) {
        var err = new Error((body && (body.description || body.detail)) || ("HTTP " + r.status));
        err.status = r.status;
        throw err;
      }
      return body;
    });
  }

  /* POST without a body (starting a job on the server); the answer's JSON, as getJson */
  function postJson(url) {
    return fetch(url, {method: "POST", headers: Object.assign({Accept: "application/json"}, authHeaders())})
      .then(jsonOf);
  }

  /* why a request failed, in the page's language: the API describes errors in English, so a Dutch page
   * says it in its own words by the status (the API's description stays for English) */
  function errorText(err) {
    var status = err && err.status;
    if (cfg.lang !== "en") {
      if (status && M["error.http." + status] !== undefined) return t("error.http." + status);
      if (status && status >= 500) return t("error.http.500");
      if (!status) return t("error.network");
    }
    return err && err.message ? err.message : String(err);
  }

  function describeError(what, err) {
    if (err && err.status === 401) return t("status.restricted_key", {what: what});
    if (err && err.status === 404) return t("status.not_available", {what: what, message: errorText(err)});
    return t("status.failed", {what: what, message: errorText(err)});
  }

  // ---------------------------------------------------------------------------------------------------
  // deck layers from the pydeck JSON
  var classes = {};
  Object.keys(D).forEach(function (k) { if (/^[A-Z]/.test(k)) classes[k] = D[k]; });
  var converter = new D.JSONConverter({
    configuration: {
      classes: classes,
      functions: globalThis.TwinDeck || {},
      enumerations: {COORDINATE_SYSTEM: D.COORDINATE_SYSTEM}
    }
  });

  function layerJson(spec) {
    var meta = metaById[spec.id] || {params: {}};
    var json = Object.assign({}, spec, {visible: !!state.visible[spec.id]});
    if (meta.params.year === "deposition" && state.year) json.data = withParam(json.data, "year", state.year);
    if (meta.params.inspectionYear && state.inspectionYear) {
      // vector tiles filter by equality only: the year is chosen by the point radius (0 outside the year)
      var y = state.inspectionYear;
      json.getPointRadius = "@@=properties.inspected_on >= '" + y + "-01-01' && properties.inspected_on <= '" +
        y + "-12-31' ? 5 : 0";
      json.updateTriggers = {getPointRadius: y};
    }
    if (json.loadOptions || json["@@type"] === "MVTLayer" || json["@@type"] === "TileLayer") {
      json.loadOptions = Object.assign({}, json.loadOptions || {}, {fetch: {headers: authHeaders()}});
    }
    return json;
  }

  var PRIORITY = cfg.theme.priority;
  function priorityColor(feature) {
    var id = feature && feature.properties ? feature.properties.establishment_id : null;
    var share = state.priority && id !== null ? state.priority[id] : undefined;
    if (share === undefined) return cfg.theme.unknown;
    for (var i = 0; i < PRIORITY.length; i++) if (share <= PRIORITY[i][0]) return PRIORITY[i][1];
    return PRIORITY[PRIORITY.length - 1][1];
  }

  function decorate(layer) {
    var id = layer.id;
    var extra = {};
    if (layer.props.renderSubLayers !== undefined || layer instanceof D.TileLayer) {
      extra.onViewportLoad = function () { markLoaded(id); };
      extra.onTileError = function (err) { tileError(id, err); };
    }
    if (HELD[id] && metrics.firstFrame === null && layer.props.extruded) {
      // Until the first frame, an extruded start-up layer is drawn once, when all its tiles are in: in
      // software WebGL (SwiftShader) each draw of the ~11,000 national columns costs 0.4-1.8 s, and drawing
      // them again as every tile arrived made the first frame 3-5 s. A hidden (visible: false) tile layer
      // would load no tiles, so the layer stays visible with an empty renderSubLayers; it counts as loaded
      // from the second frame after it is drawn (afterRender below). A tile error leaves it to the frames
      // after the first, which draw it as usual.
      var held = HELD[id];
      if (!held.ready) {
        // tiles load as usual, but no tile makes a sub-layer to draw until all of them are in
        // an empty GeoJsonLayer (not null: a binary MVTLayer warns about anything else)
        extra.renderSubLayers = function (props) { return new D.GeoJsonLayer({id: props.id, data: [], visible: false}); };
        extra.onViewportLoad = function () { held.ready = true; refresh(); };
      } else if (held.since === null) {
        held.since = metrics.frames;
      }
      extra.updateTriggers = Object.assign({}, layer.props.updateTriggers, {renderSubLayers: held.ready});
    }
    if (layer instanceof D.MVTLayer && metrics.firstFrame === null && D.MVTLoader) {
      // Until the first frame, tiles are parsed on the main thread: starting the MVT workers (three, each
      // compiling loaders.gl) for the ~18 start-up tiles costs more than parsing them here, on 2 cores up to
      // 1 s of the first frame. Layers built after it (at the next refresh: the housing analysis arriving, a
      // toggle) parse in the workers again, which keeps panning and zooming smooth.
      extra.loaders = [D.MVTLoader];
      extra.loadOptions = Object.assign({}, layer.props.loadOptions,
        {core: Object.assign({}, (layer.props.loadOptions || {}).core, {worker: false})});
    }
    if (id === "place-labels") {
      extra.data = placesFor(state.viewState.zoom);
      extra.updateTriggers = {getText: placeBand(state.viewState.zoom)};
    }
    if (id === "housing-sites") {
      extra.data = state.housing ? {type: "FeatureCollection", features: housingShown()} :
        {type: "FeatureCollection", features: []};
    }
    if (id === "establishments" && state.establishmentColor === "priority" && state.priority && mayRank()) {
      extra.getFillColor = priorityColor;
      extra.updateTriggers = {getFillColor: state.priorityVersion};
    }
    return Object.keys(extra).length ? layer.clone(extra) : layer;
  }

  // place names (TextLayer "place-labels"): municipalities from zoom 7.5, BAG places (woonplaatsen) from 10
  var places = [];
  function placeBand(zoom) { return zoom < 7.5 ? 0 : zoom < 10 ? 1 : 2; }
  var placeCache = {};
  function placesFor(zoom) {
    var band = placeBand(zoom);
    if (!placeCache[band]) {
      var names = {};
      places.forEach(function (p) { if (p.kind === "place") names[p.name] = true; });
      placeCache[band] = places.filter(function (p) {
        if (band === 0) return false;
        if (band === 1) return p.kind === "municipality";
        return p.kind === "place" || !names[p.name];  // a municipality named as its main place: once
      });
    }
    return placeCache[band];
  }
  function loadPlaces() {
    return getJson(cfg.placesUrl).then(function (body) {
      places = (body && body.places) || [];
      placeCache = {};
      refresh();
    }).catch(function () { /* labels are orientation only: the map works without them */ });
  }

  function selectionLayers() {
    if (!state.selection) return [];
    var s = state.selection;
    return [
      new D.ScatterplotLayer({
        id: "selection-circle", data: [s], getPosition: function (d) { return d.position; },
        getRadius: function (d) { return d.radius; }, radiusUnits: "meters", stroked: true, filled: true,
        filled: false, getLineColor: [20, 20, 20, 230], lineWidthUnits: "pixels", getLineWidth: 2,
        parameters: {depthTest: false}, pickable: false
      }),
      // a ring around the chosen point (not a disc over it): what was selected stays visible inside
      new D.ScatterplotLayer({
        id: "selection-point", data: [s], getPosition: function (d) { return d.position; },
        radiusUnits: "pixels", getRadius: 11, stroked: true, filled: false,
        getLineColor: [255, 255, 255, 255], lineWidthUnits: "pixels", getLineWidth: 5,
        parameters: {depthTest: false}, pickable: false
      }),
      new D.ScatterplotLayer({
        id: "selection-point-ink", data: [s], getPosition: function (d) { return d.position; },
        radiusUnits: "pixels", getRadius: 11, stroked: true, filled: false,
        getLineColor: [20, 20, 20, 255], lineWidthUnits: "pixels", getLineWidth: 2,
        parameters: {depthTest: false}, pickable: false
      })
    ];
  }

  function buildLayers() {
    // Hidden tile layers would still fetch tiles: they are left out rather than set invisible. So are
    // restricted layers without a key: their requests could only fail (401).
    var shown = cfg.deck.layers.filter(function (l) { return state.visible[l.id] && !lacksKey(l.id); });
    var converted = converter.convert({layers: shown.map(layerJson)}).layers || [];
    return converted.filter(Boolean).map(decorate).concat(extensionLayers(), selectionLayers());
  }

  /* Views loaded on demand (quality.js) add layers and tooltips through twinMap.extend({layers, tooltip}). */
  var extensions = [];
  function extensionLayers() {
    return extensions.reduce(function (all, x) { return x.layers ? all.concat(x.layers()) : all; }, []);
  }

  function refresh() {
    if (deckgl) deckgl.setProps({layers: buildLayers()});
    renderLegend();
    noteRestricted();
  }

  // ---------------------------------------------------------------------------------------------------
  // loading metrics and tile errors
  function tiledVisibleIds() {
    var zoom = state.viewState.zoom;
    return cfg.deck.layers.filter(function (l) {
      if (!state.visible[l.id] || lacksKey(l.id) || (l["@@type"] !== "MVTLayer" && l["@@type"] !== "TileLayer")) return false;
      if (l.minZoom !== undefined && zoom < l.minZoom) return false;
      if (l.visibleMinZoom !== undefined && l.visibleMinZoom !== null && zoom < l.visibleMinZoom) return false;
      if (l.visibleMaxZoom !== undefined && l.visibleMaxZoom !== null && zoom > l.visibleMaxZoom) return false;
      return true;
    }).map(function (l) { return l.id; });
  }

  var initialTiled = null;
  // Extruded layers drawn once at start-up, when their tiles are in (see decorate).
  var HELD = {"deposition-national": {ready: false, since: null}};
  function afterRender() {
    Object.keys(HELD).forEach(function (id) {
      // counted from the second frame after it was made visible: that frame has certainly drawn it
      var h = HELD[id];
      if (h.since === null || metrics.loaded[id] !== undefined) return;
      if (metrics.frames >= h.since + 2) markLoaded(id);
      else requestAnimationFrame(function () { if (deckgl) deckgl.redraw("first frame"); });
    });
    checkFirstFrame();
  }
  var HOUSING_DEFER_MAX_MS = 8000;  // load the housing analysis by then even if the first frame is late
  var housingStarted = false;
  function afterFirstFrame() {
    if (housingStarted) return;
    housingStarted = true;
    $("loading").hidden = true;
    loadHousing();
    loadPlaces();
  }
  function markLoaded(id) {
    if (metrics.loaded[id] === undefined) metrics.loaded[id] = performance.now() - T0;
  }

  function checkFirstFrame() {
    if (metrics.firstFrame !== null || !initialTiled) return;
    var done = initialTiled.every(function (id) {
      return metrics.loaded[id] !== undefined || metrics.tileErrors[id] !== undefined;
    });
    if (done) {
      metrics.firstFrame = performance.now() - T0;
      document.body.setAttribute("data-first-frame", "1");
      $("loading").hidden = true;
      afterFirstFrame();
    }
  }

  var reported = {};
  function tileError(id, err) {
    var status = err && (err.status || (err.response && err.response.status));
    var message = String(err && err.message ? err.message : err);
    if (!status) {
      var m = /\b(401|403|404|500|503)\b/.exec(message);
      if (m) status = Number(m[1]);
    }
    metrics.tileErrors[id] = (metrics.tileErrors[id] || 0) + 1;
    metrics.lastTileError = id + ": " + message;
    if (status === 401 && state.apiKey) { checkKey(); return; }  // an expired key: dropped, the layer reloads
    if (reported[id]) return;
    reported[id] = true;
    var meta = metaById[id] || {title: id};
    var text = status === 401 || status === 403
      ? t("status.layer_restricted", {title: meta.title})
      : t("status.tiles_failed", {title: meta.title, why: status ? "HTTP " + status : message});
    say(text, "warning");
    var item = document.querySelector('[data-layer-note="' + id + '"]');
    if (item) item.textContent = status === 401 || status === 403 ? t("note.needs_key") : t("note.tiles_unavailable");
  }

  // ---------------------------------------------------------------------------------------------------
  // tooltips
  function getTooltip(info) {
    if (!info.object || !info.layer) return null;
    for (var i = 0; i < extensions.length; i++) {
      var own = extensions[i].tooltip && extensions[i].tooltip(info);
      if (own) return own;
    }
    var meta = metaById[info.layer.id];
    if (!meta) return null;
    var props = info.object.properties || info.object;
    if (meta.params.year === "deposition" && props.year === undefined && state.year) {
      props = Object.assign({year: state.year}, props);  // tiles of one year leave the year out
    }
    var rows = meta.tooltip.filter(function (f) { return props[f.field] !== undefined && props[f.field] !== null; });
    if (!rows.length) return null;
    var html = "<strong>" + escapeHtml(meta.title) + "</strong><table>" + rows.map(function (f) {
      return "<tr><th scope=\"row\">" + escapeHtml(f.label) + "</th><td>" +
        escapeHtml(f.field === "verdict" ? verdictLabel(verdictOf(props)) : fmt(props[f.field], f.unit, f.field)) +
        "</td></tr>";
    }).join("") + "</table>";
    if (meta.id === "establishments" || meta.id === "housing-sites") html += "<em>" + escapeHtml(t("tooltip.click_context")) + "</em>";
    return {html: html, className: "twin-tooltip", style: {}};
  }

  // ---------------------------------------------------------------------------------------------------
  // the side panel: area context and printable report
  var contextRequest = 0;

  var panelOpener = null;  // the element that had the focus when the panel opened: it gets it back
  function openPanel(title) {
    if ($("panel").hidden) panelOpener = document.activeElement;
    $("panel").hidden = false;
    document.body.classList.add("panel-open");
    $("panel-title").textContent = title;
    $("panel-body").replaceChildren(el("p", {className: "muted", text: t("panel.loading")}));
  }

  function closePanel() {
    $("panel").hidden = true;
    document.body.classList.remove("panel-open");
    state.selection = null;
    refresh();
    var back = panelOpener && document.body.contains(panelOpener) && panelOpener !== document.body ? panelOpener : $("map");
    panelOpener = null;
    back.focus();
  }

  function table(rows, allColumns) {
    // columns without any value (e.g. inspections hidden from an anonymous caller) are left out
    var columns = allColumns.filter(function (c) {
      return rows.some(function (r) { var v = typeof c[0] === "function" ? c[0](r) : r[c[0]]; return v !== null && v !== undefined && v !== ""; });
    });
    var thead = el("thead", null, [el("tr", null, columns.map(function (c) { return el("th", {scope: "col", text: c[1]}); }))]);
    var tbody = el("tbody", null, rows.map(function (r) {
      return el("tr", null, columns.map(function (c) {
        var v = typeof c[0] === "function" ? c[0](r) : r[c[0]];
        return el("td", {text: fmt(v, c[2], typeof c[0] === "string" ? c[0] : null)});
      }));
    }));
    return el("table", {className: "data"}, [thead, tbody]);
  }

  /* a section whose table is wider than the panel scrolls sideways: it takes the focus, so that the
   * arrow keys scroll it (WCAG 2.1.1; axe: scrollable-region-focusable) */
  function keyboardScroll(root) {
    Array.prototype.forEach.call(root.querySelectorAll(".ctx"), function (s) {
      if (s.scrollWidth > s.clientWidth + 1 && !s.hasAttribute("tabindex")) {
        s.setAttribute("tabindex", "0");
        s.setAttribute("role", "region");
        var h = s.querySelector("h3");
        if (h) s.setAttribute("aria-label", h.textContent);
      }
    });
  }

  function section(title, content) {
    return el("section", {className: "ctx"}, [el("h3", {text: title})].concat(content));
  }

  function renderContext(ctx, heading, extra) {
    var body = $("panel-body");
    var parts = [];
    if (extra) parts = parts.concat(extra);
    var where = ctx.municipality ? ctx.municipality.name + " (" + ctx.municipality.code + ")" : t("panel.outside");
    var centre = ctx.centre || {};
    parts.push(el("p", {className: "lead"}, [
      el("strong", {text: where}), " · " + t("panel.radius", {r: fmt(ctx.radius_m, "m")}) +
        (centre.lat !== undefined ? " · " + t("panel.point", {lat: Number(centre.lat).toFixed(5), lon: Number(centre.lon).toFixed(5)}).replace(/^[^:]*: /, "") : "")
    ]));
    var reportUrl = contextUrl(Object.assign({}, ctx.query || {}, {lang: cfg.lang}), "html");
    var reportLink = el("a", {href: reportUrl, target: "_blank", rel: "noopener", className: "button signed",
      id: "report-link"}, [t(ctx.query && ctx.query.site ? "housing.site_report" : "panel.report")]);
    parts.push(el("p", null, [reportLink]));
    signLink(reportLink);
    if (ctx.query && ctx.query.establishment) parts.push(historySection(ctx.query.establishment));
    if (ctx.query && ctx.query.establishment && mayRank()) parts.push(prioritySection(ctx.query.establishment));

    var dep = ctx.deposition || {};
    var molUnit = t("unit.mol N/ha/yr");
    if (dep.at_point && dep.at_point.length) {
      parts.push(section(t("panel.deposition", {unit: molUnit}), [table(
        dep.at_point.map(function (p) {
          var circle = (dep.in_circle || []).filter(function (c) { return c.year === p.year; })[0] || {};
          return {year: p.label || String(p.year), point: p.value, mean: circle.mean, max: circle.max};
        }),
        [["year", t("panel.col.year")], ["point", t("panel.col.at_point")], ["mean", t("panel.col.mean_circle")],
          ["max", t("panel.col.max_circle")]]
      )]));
    }
    var aerius = ctx.aerius;
    if (aerius && aerius.items && aerius.items.length) {
      parts.push(section(t("panel.aerius", {unit: molUnit, r: fmt(aerius.radius_m, "m")}), [table(
        aerius.items.map(function (i) {
          return {year: i.year, what: i.basis === "PROPOSED - REFERENCE" ? i.situation + " − " + i.reference : i.situation_type + " " + i.situation,
                  max: i.max, mean: i.mean, background: i.background_mean};
        }),
        [["year", t("panel.col.year")], ["what", t("panel.col.situation")], ["max", t("panel.col.max")],
          ["mean", t("panel.col.mean")], ["background", t("panel.col.background")]]
      )]));
    }
    var ests = ctx.establishments || [];
    var summary = ctx.inspection_summary || {};
    var estSection = [el("p", {className: "muted", text: t("panel.est_count", {n: ests.length, r: fmt(ctx.radius_m, "m")}) +
      (summary.open_violations !== undefined && summary.open_violations !== null
        ? t("panel.open_violations", {n: summary.open_violations}) : "")})];
    if (ests.length) {
      estSection.push(table(ests.slice(0, 25), [
        [function (e) { return e.name || e.establishment_id; }, t("panel.col.name")],
        ["distance_m", t("panel.col.distance"), "m"],
        [function (e) { var d = e.sbi_description || ""; return e.sbi_code + (d ? " " + (d.length > 28 ? d.slice(0, 27) + "…" : d) : ""); }, t("panel.col.activity")],
        ["environmental_category", t("panel.col.category")],
        [function (e) { return e.last_inspection ? fmtDate(e.last_inspection.date) + " " + (e.last_inspection.result || "") +
          (e.last_inspection.lhs_cell ? " (LHS " + e.last_inspection.lhs_cell + ")" : "") : null; }, t("panel.col.last_inspection")],
        ["open_violations", t("panel.col.open_violations")],
        [function (e) { return e.active_permits ? e.active_permits.length : null; }, t("panel.col.permits")]
      ]));
      if (ests.length > 25) estSection.push(el("p", {className: "muted", text: t("panel.more", {n: ests.length - 25})}));
    }
    parts.push(section(t("panel.establishments"), estSection));
    var habitats = ctx.habitats || [];
    parts.push(section(t("panel.habitats"), habitats.length ? [table(habitats.slice(0, 15), [
      ["area_name", t("panel.col.area")], ["habitat_type", t("panel.col.type")], ["kdw", t("panel.col.kdw")],
      ["exceedance", t("panel.col.exceedance")],
      [function (h) { return h.status ? codeLabel("report.status.", h.status) : null; }, t("panel.col.status")], ["distance_m", t("panel.col.distance"), "m"]
    ])] : [el("p", {className: "muted", text: t("panel.no_habitats")})]));
    var housing = ctx.housing_within_guide_distance || [];
    parts.push(section(t("panel.housing"), housing.length ? [table(housing, [
      ["name", t("panel.col.site")], ["planned_dwellings", t("panel.col.dwellings")], ["phase", t("panel.col.phase")],
      [function (h) { return (h.establishments || []).map(function (e) {
        return (e.name || e.establishment_id) + " (" + verdictLabel(e.severity) + ", " + fmt(e.distance_m, "m") + ")"; }).join("; "); },
      t("panel.establishments")]
    ])] : [el("p", {className: "muted", text: t("panel.no_housing")})]));
    if (heading) $("panel-title").textContent = heading;
    body.replaceChildren.apply(body, parts);
    keyboardScroll(body);
    $("panel-title").focus();
  }

  /* The full inspection history of an establishment (restricted: only with a key that may read it), newest
   * first, as a scrollable table: the panel of an inspector preparing a visit. */
  var HISTORY_LIMIT = 200;
  function historySection(id) {
    var box = el("div", {className: "history", id: "inspection-history"});
    var head = el("h3", {text: t("panel.history")});
    var wrap = section(t("panel.history"), [box]);
    wrap.replaceChild(head, wrap.firstChild);
    if (!state.apiKey) {
      box.appendChild(el("p", {className: "muted", text: t("panel.history_restricted")}));
      return wrap;
    }
    box.appendChild(el("p", {className: "muted", text: t("panel.history_loading")}));
    var url = "/collections/inspections/items?limit=" + HISTORY_LIMIT + "&establishment_id=" + encodeURIComponent(id) +
      "&sortby=-inspected_on";
    getJson(url).then(function (fc) {
      var rows = (fc.features || []).map(function (f) { return Object.assign({id: f.id}, f.properties); });
      rows.sort(function (a, b) { return String(b.inspected_on).localeCompare(String(a.inspected_on)); });
      var matched = fc.numberMatched !== undefined ? fc.numberMatched : rows.length;
      var parts = [el("p", {className: "muted", text: rows.length ? t("panel.history_count", {n: matched}) +
        (matched > rows.length ? " " + t("panel.history_more", {n: rows.length}) : "") : t("panel.history_none")})];
      if (rows.length) {
        var tbl = table(rows, [["inspected_on", t("field.inspected_on")], ["kind", t("field.kind")],
          ["result", t("field.result")], ["lhs_cell", t("field.lhs_cell")], ["intervention", t("field.intervention")],
          ["follow_up_status", t("field.follow_up_status")]]);
        parts.push(el("div", {className: "scroll", tabindex: "0", role: "region", "aria-label": t("panel.history")}, [tbl]));
      }
      box.replaceChildren.apply(box, parts);
    }).catch(function (err) {
      box.replaceChildren(el("p", {className: "error", text: describeError(t("panel.history_name"), err)}));
    });
    return wrap;
  }

  /* A report opens in a new tab, where no key header goes along: with a key, its link is exchanged for a
   * short-lived signed one (/analysis/link: the caller's role and organisation, no key in the URL), renewed
   * on a click when it is about to expire. Without a key the plain link is used. */
  function signLink(a) {
    var plain = a.getAttribute("data-href") || a.getAttribute("href");
    a.setAttribute("data-href", plain);
    a.removeAttribute("data-expires");
    if (!state.apiKey) { a.setAttribute("href", plain); return Promise.resolve(a); }
    return getJson("/analysis/link?href=" + encodeURIComponent(plain)).then(function (b) {
      a.setAttribute("href", b.href);
      if (b.expires) a.setAttribute("data-expires", String(Date.parse(b.expires)));
      return a;
    }).catch(function (err) {
      say(t("access.link_failed", {message: errorText(err)}), "warning");
      return a;
    });
  }
  document.addEventListener("click", function (e) {
    var a = e.target && e.target.closest ? e.target.closest("a.signed") : null;
    if (!a || !state.apiKey) return;
    var expires = Number(a.getAttribute("data-expires") || 0);
    if (expires && Date.now() < expires - 30000) return;  // still valid: the browser follows it
    e.preventDefault();
    var tab = a.getAttribute("target") === "_blank" ? window.open("", "_blank") : null;
    signLink(a).then(function () {
      if (tab) { tab.opener = null; tab.location = a.href; } else window.location.assign(a.href);
    });
  });

  function contextUrl(query, format) {
    var params = new URLSearchParams();
    Object.keys(query).forEach(function (k) { if (query[k] !== null && query[k] !== undefined) params.set(k, query[k]); });
    if (format) params.set("f", format);
    return "/analysis/context?" + params.toString();
  }

  var lastContext = null;
  function showContext(query, title, extra) {
    lastContext = {query: query, title: title, extra: extra};
    var ticket = ++contextRequest;
    openPanel(title);
    return getJson(contextUrl(query)).then(function (ctx) {
      if (ticket !== contextRequest) return null;
      ctx.query = query;
      var heading = title;
      if (query.establishment) {
        var me = (ctx.establishments || []).filter(function (e) { return e.establishment_id === query.establishment; })[0];
        if (me && me.name) heading = me.name;
        if (ctx.centre && ctx.centre.lon !== undefined) {
          state.selection = {position: [ctx.centre.lon, ctx.centre.lat], radius: ctx.radius_m || 500};
          refresh();
        }
      }
      renderContext(ctx, heading, extra);
      return ctx;
    }).catch(function (err) {
      if (ticket !== contextRequest) return;
      $("panel-body").replaceChildren(
        el("p", {className: "error", text: describeError(t("panel.context"), err)}),
        extra ? el("div", null, extra) : el("span"),
        query.lon !== undefined ? el("p", {className: "muted", text: t("panel.point", {lat: Number(query.lat).toFixed(5),
          lon: Number(query.lon).toFixed(5)})}) : el("span")
      );
    });
  }

  function openPoint(lon, lat) {
    var radius = cfg.contextRadius;
    state.selection = {position: [lon, lat], radius: radius};
    refresh();
    return showContext({lon: lon.toFixed(6), lat: lat.toFixed(6), radius: radius}, t("panel.title"));
  }

  function openEstablishment(id, position, props) {
    if (position) state.selection = {position: position, radius: cfg.contextRadius};
    refresh();
    var extra = props ? [establishmentFacts(props)] : null;
    return showContext({establishment: id, radius: cfg.contextRadius}, (props && props.name) || t("panel.establishment", {id: id}), extra);
  }

  var FACTS = ["establishment_id", "kvk_number", "sbi_code", "sbi_description", "environmental_category",
    "activiteitenbesluit_type", "bal_regime", "brzo", "visit_frequency_years", "started_on", "city"];
  function establishmentFacts(p) {
    return el("dl", {className: "facts"}, FACTS.filter(function (f) { return p[f] !== undefined && p[f] !== null && p[f] !== ""; })
      .reduce(function (acc, f) { acc.push(el("dt", {text: t("field." + f)})); acc.push(el("dd", {text: fmt(p[f], null, f)})); return acc; }, []));
  }

  function onClick(info) {
    if (info.object && info.layer && info.layer.id === "establishments") {
      var p = info.object.properties || {};
      openEstablishment(p.establishment_id, info.coordinate, p);
      return;
    }
    if (info.object && info.layer && info.layer.id === "housing-sites") {
      openHousingSite(info.object);
      return;
    }
    if (info.coordinate) openPoint(info.coordinate[0], info.coordinate[1]);
  }

  // ---------------------------------------------------------------------------------------------------
  // camera
  function flyTo(target) {
    var vs = Object.assign({}, state.viewState, target, {
      transitionDuration: target.transitionDuration === undefined ? 1400 : target.transitionDuration,
      transitionInterpolator: new D.FlyToInterpolator()
    });
    deckgl.setProps({initialViewState: vs});
    // deck.gl reports transitions through onViewStateChange, but not a jump: keep the state in step
    if (!vs.transitionDuration) state.viewState = Object.assign({}, vs);
  }

  function bboxOf(geometry) {
    var b = [Infinity, Infinity, -Infinity, -Infinity];
    (function walk(c) {
      if (typeof c[0] === "number") {
        b[0] = Math.min(b[0], c[0]); b[1] = Math.min(b[1], c[1]);
        b[2] = Math.max(b[2], c[0]); b[3] = Math.max(b[3], c[1]);
      } else c.forEach(walk);
    })(geometry.type === "GeometryCollection" ? geometry.geometries.map(function (g) { return g.coordinates; }) : geometry.coordinates);
    return b;
  }

  function flyToBounds(b, maxZoom) {
    var size = $("map").getBoundingClientRect();
    var vp = new D.WebMercatorViewport({width: Math.max(size.width, 200), height: Math.max(size.height, 200)});
    var fit = vp.fitBounds([[b[0], b[1]], [b[2], b[3]]], {padding: Math.min(80, size.width / 6)});
    flyTo({longitude: fit.longitude, latitude: fit.latitude, zoom: Math.min(fit.zoom, maxZoom || 14),
      pitch: state.viewState.pitch || 45});
  }

  // ---------------------------------------------------------------------------------------------------
  // search: establishments by name or KvK number, municipalities by name or code
  function likeVariants(field, q, contains) {
    var esc = q.replace(/'/g, "''");
    var variants = [esc, esc.toLowerCase(), esc.charAt(0).toUpperCase() + esc.slice(1)];
    variants = variants.filter(function (v, i) { return variants.indexOf(v) === i; });
    return variants.map(function (v) { return field + " LIKE '" + (contains ? "%" : "") + v + "%'"; }).join(" OR ");
  }

  function search(q) {
    q = (q || "").trim();
    var box = $("search-results");
    if (!q) { box.hidden = true; return Promise.resolve([]); }
    box.hidden = false;
    box.replaceChildren(el("p", {className: "muted", text: t("search.searching")}));
    var estUrl = /^\d{8}$/.test(q)
      ? "/collections/establishments/items?limit=8&kvk_number=" + q
      : "/collections/establishments/items?limit=8&filter=" + encodeURIComponent(likeVariants("name", q, true));
    var munUrl = /^GM\d{4}$/i.test(q)
      ? "/collections/municipalities/items?limit=8&code=" + q.toUpperCase()
      : "/collections/municipalities/items?limit=8&filter=" + encodeURIComponent(likeVariants("name", q, false));
    var settle = function (p) { return p.then(function (v) { return {ok: true, value: v}; }, function (e) { return {ok: false, error: e}; }); };
    return Promise.all([settle(getJson(munUrl)), settle(getJson(estUrl))]).then(function (res) {
      var results = [];
      var notes = [];
      if (res[0].ok) (res[0].value.features || []).forEach(function (f) { results.push({kind: "municipality", feature: f}); });
      else notes.push(describeError(t("search.municipalities"), res[0].error));
      if (res[1].ok) (res[1].value.features || []).forEach(function (f) { results.push({kind: "establishment", feature: f}); });
      else notes.push(describeError(t("search.establishments"), res[1].error));
      renderResults(q, results, notes);
      var exact = results.filter(function (r) {
        return r.kind === "municipality" && String(r.feature.properties.name).toLowerCase() === q.toLowerCase();
      });
      if (exact.length === 1) chooseResult(exact[0]);
      else if (results.length === 1) chooseResult(results[0]);
      return results;
    });
  }

  function resultLabel(r) {
    var p = r.feature.properties || {};
    if (r.kind === "municipality") return p.name + " (" + (p.code || r.feature.id) + ")";
    return (p.name || t("panel.establishment", {id: p.establishment_id || r.feature.id})) +
      (p.kvk_number ? " · KvK " + p.kvk_number : "") + (p.city ? " · " + p.city : "");
  }

  function renderResults(q, results, notes) {
    var box = $("search-results");
    var items = results.map(function (r) {
      return el("li", null, [el("button", {type: "button", className: "result", onclick: function () { chooseResult(r); }},
        [el("span", {className: "kind", text: t("search.kind." + r.kind)}), " " + resultLabel(r)])]);
    });
    // only nodes: replaceChildren writes null as the text "null"
    var parts = [el("div", {className: "results-head"}, [
      el("p", {className: "muted", text: results.length ? t("search.count", {n: results.length, q: q}) : t("search.none", {q: q})}),
      el("button", {type: "button", className: "close", "aria-label": t("search.close"), onclick: closeResults}, ["×"])])];
    if (items.length) parts.push(el("ul", null, items));
    if (notes.length) parts.push(el("p", {className: "error", text: notes.join(" ")}));
    box.replaceChildren.apply(box, parts);
  }

  function closeResults() {
    var box = $("search-results");
    var wasOpen = !box.hidden;
    box.hidden = true;
    if (wasOpen && box.contains(document.activeElement)) $("search-input").focus();
    return wasOpen;
  }

  function chooseResult(r) {
    var f = r.feature;
    closeResults();  // the list closes once a result is chosen
    if (!f.geometry) { say(t("search.no_geometry"), "warning"); return; }
    if (r.kind === "municipality") {
      flyToBounds(bboxOf(f.geometry), 13);
      say(t("search.flying", {name: f.properties.name || t("search.the_municipality")}), "info");
    } else {
      var c = f.geometry.type === "Point" ? f.geometry.coordinates : null;
      if (!c) { var b = bboxOf(f.geometry); c = [(b[0] + b[2]) / 2, (b[1] + b[3]) / 2]; }
      flyTo({longitude: c[0], latitude: c[1], zoom: 15, pitch: 50});
      var p = Object.assign({}, f.properties);
      if (p.establishment_id === undefined) p.establishment_id = f.id;
      openEstablishment(String(p.establishment_id), c, p);
    }
  }

  // ---------------------------------------------------------------------------------------------------
  // housing against nitrogen: the verdicts, listed and on the map
  function verdictOf(p) {
    var v = String(p.verdict || "").toLowerCase().replace(/[_-]+/g, " ").trim();
    return v || "unknown";
  }

  function verdictLabel(v) { return M["verdict." + v] !== undefined ? t("verdict." + v) : v; }

  function siteCentre(f) {
    var b = bboxOf(f.geometry);
    return [(b[0] + b[2]) / 2, (b[1] + b[3]) / 2];
  }

  function reasonsOf(p) {
    var r = p.reasons || p.reason || p.explanation;
    if (!r) return [];
    return Array.isArray(r) ? r.map(String) : [String(r)];
  }

  /* the municipality of a site as the list shows it: the one it is assigned to (largest overlap) */
  function siteMunicipality(p) {
    var m = (p.municipalities || [])[0];
    return m ? m.name : (p.municipality_name || "");
  }

  /* The verdict of a site explained: indicative, what drives it, the reasons, and every criterion with its
   * value, threshold, source and whether it triggered (the same rows the API, the CSV and the report give). */
  function verdictFacts(p) {
    var verdict = verdictOf(p);
    var drivers = (p.drivers || []).map(function (d) { return t("driver." + d); }).join(", ");
    var rows = (p.criteria || []).map(function (c) {
      var value = c.value === null || c.value === undefined ? (c.none_text || "–") :
        fmt(c.value, c.unit === "m" ? "m" : (M["unit." + c.unit] || c.unit));
      return el("tr", {className: c.triggered ? "triggered" : null}, [
        el("td", {text: c.label}), el("td", {text: c.subject || "–"}), el("td", {text: value}),
        el("td", {text: c.threshold_text}), el("td", {text: c.triggered ? t("value.yes") : t("value.no")}),
        el("td", {text: c.effect ? verdictLabel(c.effect) : "–"}), el("td", {text: c.source})]);
    });
    var heads = ["criterion", "subject", "value", "threshold", "triggered", "effect", "source"].map(function (k) {
      return el("th", {scope: "col", text: t("criteria." + k)});
    });
    var params = (state.housing && state.housing.parameters) || {};
    return el("div", {className: "verdict verdict-" + verdict.replace(/ /g, "-")}, [
      el("p", null, [el("strong", {text: t("housing.indicative", {verdict: verdictLabel(verdict)})}),
        drivers ? el("span", {className: "drivers", text: " · " + t("housing.driven_by", {drivers: drivers})}) : null,
        " · " + t("housing.dwellings", {n: Number(p.planned_dwellings) || 0}) +
        (p.phase ? " · " + p.phase : "") + (p.planned_year ? " · " + String(p.planned_year) : "")]),
      reasonsOf(p).length ? el("ul", null, reasonsOf(p).map(function (r) { return el("li", {text: r}); })) : null,
      rows.length ? el("h4", {text: t("criteria.heading")}) : null,
      rows.length ? el("div", {className: "scroll", tabindex: "0", role: "region", "aria-label": t("criteria.heading")}, [
        el("table", {className: "data criteria"}, [el("thead", null, [el("tr", null, heads)]), el("tbody", null, rows)])]) : null,
      params.conflict_habitat_distance_m !== undefined ? el("p", {className: "muted", text: t("housing.thresholds", {
        near: params.conflict_habitat_distance_m, margin: params.approach_margin, radius: params.habitat_radius_m})}) : null,
      el("p", {className: "muted", text: t("housing.indicative_note")})
    ]);
  }

  function openHousingSite(f) {
    var p = f.properties || {};
    var c = siteCentre(f);
    state.selection = {position: c, radius: cfg.contextRadius};
    refresh();
    var title = (p.name || t("housing.site")) + (siteMunicipality(p) ? ", " + siteMunicipality(p) : "");
    // the site's own context: distances from its edge, the habitats within the verdict's radius, its verdict
    return showContext({site: p.site_id || f.id, radius: cfg.contextRadius}, title, [verdictFacts(p)]);
  }

  function loadHousing() {
    var list = $("housing-list");
    list.replaceChildren(el("p", {className: "muted", text: t("housing.loading")}));
    return getJson("/analysis/housing-nitrogen?lang=" + cfg.lang).then(function (fc) {
      state.housing = fc && fc.features ? fc : {type: "FeatureCollection", features: []};
      renderHousing();
      refresh();
    }).catch(function (err) {
      state.housingError = err;
      list.replaceChildren(el("p", {className: "error", text: describeError(t("housing.analysis"), err)}));
      // Without the analysis the sites are still drawn, without a verdict.
      return getJson("/collections/housing-sites/items?limit=10000").then(function (fc) {
        state.housing = fc;
        refresh();
      }).catch(function () { /* the message above says enough */ });
    });
  }

  /* the housing filters (municipality, verdicts): the list, the map and the exports follow them */
  var housingFilter = {municipality: "", verdicts: null};
  function housingShown() {
    var features = (state.housing && state.housing.features) || [];
    return features.filter(function (f) {
      var p = f.properties || {};
      if (housingFilter.municipality && !(p.municipalities || []).some(function (m) { return m.code === housingFilter.municipality; }) &&
          p.municipality_code !== housingFilter.municipality) return false;
      return !housingFilter.verdicts || housingFilter.verdicts.indexOf(verdictOf(p)) >= 0;
    });
  }
  function housingUrl(format) {
    var params = new URLSearchParams();
    if (housingFilter.municipality) params.set("municipality", housingFilter.municipality);
    if (housingFilter.verdicts) params.set("verdict", housingFilter.verdicts.join(","));
    params.set("f", format);
    params.set("lang", cfg.lang);
    return "/analysis/housing-nitrogen?" + params.toString();
  }
  function housingControls() {
    var features = (state.housing && state.housing.features) || [];
    var munis = {};
    features.forEach(function (f) {
      ((f.properties || {}).municipalities || []).forEach(function (m) { munis[m.code] = m.name; });
    });
    var select = el("select", {id: "housing-municipality", onchange: function (e) {
      housingFilter.municipality = e.target.value; renderHousing(); refresh(); }},
      [el("option", {value: "", text: t("housing.filter_all")})].concat(Object.keys(munis).sort(function (a, b) {
        return String(munis[a]).localeCompare(String(munis[b]));
      }).map(function (code) {
        return el("option", {value: code, text: munis[code] + " (" + code + ")",
          selected: housingFilter.municipality === code ? "selected" : null});
      })));
    var verdicts = cfg.theme.verdicts.map(function (v) { return v[0]; });
    var boxes = verdicts.map(function (v) {
      var id = "housing-verdict-" + v.replace(/ /g, "-");
      return el("span", {className: "radio"}, [el("input", {type: "checkbox", id: id, value: v,
        checked: !housingFilter.verdicts || housingFilter.verdicts.indexOf(v) >= 0 ? "checked" : null,
        onchange: function () {
          var on = verdicts.filter(function (w) { return $("housing-verdict-" + w.replace(/ /g, "-")).checked; });
          housingFilter.verdicts = on.length === verdicts.length ? null : on;
          renderHousing(); refresh();
        }}), el("label", {"for": id, text: verdictLabel(v)})]);
    });
    var links = [["csv", "housing.export_csv"], ["geojson", "housing.export_geojson"], ["html", "housing.export_html"]]
      .map(function (x) {
        var a = el("a", {href: housingUrl(x[0]), className: "signed", id: "housing-export-" + x[0],
          target: x[0] === "html" ? "_blank" : null, rel: x[0] === "html" ? "noopener" : null,
          download: x[0] === "html" ? null : "woningbouw-stikstof." + (x[0] === "csv" ? "csv" : "geojson")}, [t(x[1])]);
        signLink(a);
        return a;
      });
    return [
      el("div", {className: "housing-filters"}, [
        el("div", null, [el("label", {"for": "housing-municipality", className: "block", text: t("housing.filter_municipality")}), select]),
        el("fieldset", null, [el("legend", {text: t("housing.filter_verdict")})].concat(boxes))]),
      el("p", {className: "exports"}, [el("span", {text: t("housing.export") + ":"})].concat(links))
    ];
  }

  function renderHousing() {
    var list = $("housing-list");
    var features = housingShown();
    var order = cfg.theme.verdicts.map(function (v) { return v[0]; });
    var groups = {};
    features.forEach(function (f) {
      var v = verdictOf(f.properties || {});
      (groups[v] = groups[v] || []).push(f);
    });
    var keys = Object.keys(groups).sort(function (a, b) {
      var ia = order.indexOf(a), ib = order.indexOf(b);
      return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib);
    });
    var totalDwellings = features.reduce(function (s, f) { return s + (Number(f.properties.planned_dwellings) || 0); }, 0);
    var parts = housingControls();
    parts.push(el("p", {className: "lead", text: t("housing.total", {sites: features.length, dwellings: totalDwellings})}));
    if (!features.length) parts.push(el("p", {className: "muted", text: t("housing.filter_none")}));
    var summary = el("ul", {className: "verdict-summary"}, keys.map(function (k) {
      var dw = groups[k].reduce(function (s, f) { return s + (Number(f.properties.planned_dwellings) || 0); }, 0);
      var color = (cfg.theme.verdicts.filter(function (v) { return v[0] === k; })[0] || [k, cfg.theme.unknown])[1];
      return el("li", null, [el("span", {className: "swatch", style: {background: rgba(color)}, "aria-hidden": "true"}),
        el("strong", {text: verdictLabel(k)}), ": " + t("housing.group", {sites: groups[k].length, dwellings: dw}) +
          (totalDwellings ? " (" + pct(dw / totalDwellings) + ")" : "")]);
    }));
    parts.push(summary);
    keys.forEach(function (k) {
      var sites = groups[k].slice().sort(function (a, b) {
        return (Number(b.properties.planned_dwellings) || 0) - (Number(a.properties.planned_dwellings) || 0);
      });
      var label = verdictLabel(k);
      parts.push(el("h3", {text: label.charAt(0).toUpperCase() + label.slice(1) + " (" + num(sites.length) + ")"}));
      parts.push(el("ul", {className: "sites"}, sites.map(function (f) {
        var p = f.properties || {};
        var drivers = (p.drivers || []).map(function (d) { return t("driver." + d); }).join(", ");
        var label = (p.name || p.site_id) + (siteMunicipality(p) ? ", " + siteMunicipality(p) : "") + " · " +
          t("housing.dwellings", {n: Number(p.planned_dwellings) || 0}) + (drivers ? " · " + drivers : "");
        return el("li", null, [el("button", {type: "button", className: "site", "data-site": p.site_id || f.id,
          onclick: function () {
            var b = bboxOf(f.geometry);
            flyToBounds([b[0] - 0.02, b[1] - 0.012, b[2] + 0.02, b[3] + 0.012], 14);
            openHousingSite(f);
          }}, [label])]);
      })));
    });
    list.replaceChildren.apply(list, parts);
  }

  // ---------------------------------------------------------------------------------------------------
  // inspection priority (issue 21): for the roles that may see it (advisor: the rule-based ranking; inspector
  // and admin: the stored visit plan of the method the settings choose), the establishments coloured by their
  // rank and, in the panel, the rank with its reasons in words. Anonymous and public callers get neither.
  var RANKING_ROLES = {advisor: true, inspector: true, admin: true};
  function mayRank() { return !!RANKING_ROLES[who.role]; }
  function priorityMethod() {
    var m = cfg.priorityMethod || "blend";
    return who.role === "advisor" ? "rules" : m;  // the model's plan is for inspectors and admins
  }
  var priorityLoad = null;
  /* the ranking: the stored plan of the method, else the stored rules plan, else the live rule-based ranking */
  function fetchRanking() {
    var base = "/analysis/inspection-priority?limit=" + cfg.priorityLimit;
    // only methods with a stored plan (/map/config.json): no request is made to be refused
    var stored = state.planMethods || [];
    var methods = who.role === "advisor" ? [] : [priorityMethod(), "rules"].filter(function (m, i, all) {
      return all.indexOf(m) === i && stored.indexOf(m) >= 0;
    });
    function attempt(i) {
      if (i >= methods.length) return getJson(base);
      return getJson(base + "&method=" + methods[i]).then(function (body) {
        return body && body.ranking && body.ranking.length ? body : attempt(i + 1);
      }, function (err) {
        if (err && err.status === 404) return attempt(i + 1);
        throw err;
      });
    }
    return attempt(0);
  }
  function loadPriority(quiet) {
    if (!mayRank()) return Promise.resolve(null);
    if (priorityLoad) return priorityLoad;
    var caller = rankedFor;
    priorityLoad = (configLoad || Promise.resolve(null)).then(fetchRanking).then(function (body) {
      if (caller !== rankedFor) return null;  // the key changed meanwhile: this ranking is not the caller's
      var rows = (body && body.ranking) || [];
      var ranks = {}, byId = {};
      var n = rows.length;
      rows.forEach(function (r, i) {
        var rank = Number(r.rank || i + 1);
        ranks[r.establishment_id] = rank / Math.max(n, 1);
        byId[r.establishment_id] = r;
      });
      state.priority = ranks;
      state.priorityRows = byId;
      state.priorityInfo = {method: body.method || "live", plan: body.plan || null, as_of: body.as_of || null,
        matched: body.numberMatched !== undefined ? body.numberMatched : n, shown: n};
      state.priorityVersion += 1;
      refresh();
      fillPrioritySections();
      if (!quiet) say(t("status.priority_on", {n: n}), "info");
      return state.priorityInfo;
    }).catch(function (err) {
      priorityLoad = null;
      if (state.establishmentColor === "priority") {
        state.establishmentColor = "category";
        var radio = document.querySelector('input[name="est-color"][value="category"]');
        if (radio) radio.checked = true;
      }
      say(describeError(t("status.priority"), err), "error");
      refresh();
      return null;
    });
    return priorityLoad;
  }
  function forgetPriority() {
    priorityLoad = null;
    state.priority = null;
    state.priorityRows = null;
    state.priorityInfo = null;
    if (!mayRank()) state.establishmentColor = "category";
    state.priorityVersion += 1;
  }
  function prioritySource() {
    var info = state.priorityInfo;
    if (!info) return "";
    if (info.plan) {
      return t("priority.source_plan", {year: String(info.plan.plan_year), method: t("priority.method." + info.method),
        cutoff: fmtDate(info.plan.data_cutoff)});
    }
    return t("priority.source_live", {date: info.as_of ? fmtDate(info.as_of) : "–"});
  }
  function priorityLegend() {
    var legend = cfg.theme.priorityLegend;
    return {title: legend.title, unit: legend.unit,
      swatches: legend.swatches.concat([{color: cfg.theme.unknown, label: t("priority.not_in_plan"), shape: "circle"}]),
      note: state.priorityInfo ? t("legend.priority_note", {source: prioritySource()}) : legend.note};
  }
  /* one reason in words for an inspector: the model's (feature and value) or the rules' (factor and points) */
  function modelReason(r) {
    var label = M["priority.feature." + r.feature] !== undefined ? t("priority.feature." + r.feature) : (r.label || r.feature);
    return t("priority.reason.model", {label: label, value: String(r.value)});
  }
  function factorReason(f) {
    var name = f.factor || f.feature;
    var factor = M["priority.factor." + name] !== undefined ? t("priority.factor." + name) : name;
    var points = Number(f.score !== undefined ? f.score : (f.contribution !== undefined ? f.contribution : f.value));
    var i = f.inputs;
    if (i && name === "relevance") {
      return t("priority.reason.relevance", {factor: factor, category: i.environmental_category || t("legend.unknown"),
        brzo: i.brzo ? t("value.yes") : t("value.no"), type: i.activiteitenbesluit_type || t("legend.unknown"), points: points});
    }
    if (i && name === "compliance") {
      return t("priority.reason.compliance", {factor: factor,
        violations: t("priority.reason.violations", {n: (i.violations || []).length}), points: points});
    }
    if (i && name === "overdue") {
      if (!i.last_inspection) return t("priority.reason.never", {factor: factor, points: points});
      return t("priority.reason.overdue", {factor: factor, date: fmtDate(i.last_inspection),
        cycles: DECIMAL.format(i.overdue_cycles || 0), points: points});
    }
    if (i && name === "surroundings") {
      return t("priority.reason.surroundings", {factor: factor, nh3: Number(i.nh3_kg_per_year) || 0,
        dwellings: Number(i.dwellings_within_guide_distance) || 0, sites: Number(i.housing_sites_within_guide_distance) || 0,
        points: points});
    }
    return t("priority.reason.points", {factor: factor, points: points});
  }
  /* the panel's section of an establishment: its rank, its reasons, where they come from */
  function prioritySection(id) {
    var box = el("div", {className: "priority", id: "priority-box", "data-establishment": id});
    var wrap = section(t("priority.heading"), [box]);
    fillPriority(box);
    if (!state.priorityInfo) loadPriority(true);
    return wrap;
  }
  function fillPrioritySections() {
    var box = $("priority-box");
    if (box) fillPriority(box);
  }
  function fillPriority(box) {
    var id = box.getAttribute("data-establishment");
    var info = state.priorityInfo;
    if (!info) { box.replaceChildren(el("p", {className: "muted", text: t("priority.loading")})); return; }
    var r = state.priorityRows[id];
    var parts = [];
    if (!r) {
      parts.push(el("p", {id: "priority-rank", text: t("priority.not_ranked", {n: info.shown})}));
    } else {
      parts.push(el("p", {id: "priority-rank"}, [el("strong", {text: t(info.plan ? "priority.rank" : "priority.rank_live",
        {rank: String(r.rank), n: num(info.matched)})})]));
      if (r.probability !== null && r.probability !== undefined) {
        parts.push(el("p", {text: t("priority.probability", {p: PERCENT.format(r.probability)})}));
      }
      var model = info.method === "model" || info.method === "blend" ? (r.reasons || []) : [];
      var rules = r.factors ? r.factors.filter(function (f) { return f.score > 0; }) : (r.rules_reasons || []);
      if (model.length) {
        parts.push(el("h4", {text: t("priority.reasons_model")}));
        parts.push(el("ul", {className: "reasons", id: "priority-model-reasons"}, model.map(function (x) { return el("li", {text: modelReason(x)}); })));
      }
      if (rules.length) {
        parts.push(el("h4", {text: t("priority.reasons_rules")}));
        parts.push(el("ul", {className: "reasons", id: "priority-rule-reasons"}, rules.map(function (x) { return el("li", {text: factorReason(x)}); })));
      }
      if (r.selection === "random") parts.push(el("p", {text: t("priority.random")}));
      if (r.override) parts.push(el("p", {text: t("priority.override", {reason: r.override.reason || ""})}));
    }
    parts.push(el("p", {className: "muted", text: prioritySource() + ". " + t("priority.advice")}));
    box.replaceChildren.apply(box, parts);
  }

  // ---------------------------------------------------------------------------------------------------
  // controls: layer toggles, legend, years, access
  function swatch(s) {
    return el("span", {className: "swatch " + s.shape, style: {background: rgba(s.color)}, "aria-hidden": "true"});
  }

  function renderToggles() {
    var groups = {};
    cfg.layers.forEach(function (m) { (groups[m.group] = groups[m.group] || []).push(m); });
    var box = $("layer-toggles");
    var parts = cfg.groups.filter(function (g) { return groups[g[0]]; }).map(function (g) {
      return el("fieldset", null, [el("legend", {text: g[1]})].concat(groups[g[0]].slice().reverse().map(function (m) {
        var id = "toggle-" + m.id;
        var input = el("input", {type: "checkbox", id: id, "data-layer": m.id, checked: state.visible[m.id] ? "checked" : null,
          onchange: function (e) {
            state.visible[m.id] = e.target.checked;
            if (e.target.checked && lacksKey(m.id)) say(t("status.layer_restricted", {title: m.title}), "warning");
            refresh();
          }});
        return el("div", {className: "toggle"}, [input, el("label", {"for": id, title: m.description || ""}, [m.title]),
          el("span", {className: "note", "data-layer-note": m.id})]);
      })));
    });
    box.replaceChildren.apply(box, parts);
  }

  function renderLegend() {
    var box = $("legend");
    var parts = [];
    cfg.layers.slice().reverse().forEach(function (m) {
      if (!state.visible[m.id] || !m.legend) return;
      var legend = m.legend;
      if (m.id === "establishments" && state.establishmentColor === "priority" && state.priority) legend = priorityLegend();
      if (m.id === "deposition-1ha" && state.visible["deposition-national"]) return;  // same legend
      var items = legend.swatches.map(function (s) { return el("li", null, [swatch(s), s.label]); });
      var block = [el("h3", {text: legend.title})];
      if (legend.unit) block.push(el("p", {className: "unit", text: legend.unit}));
      block.push(el("ul", null, items));
      if (legend.note) block.push(el("p", {className: "unit", text: legend.note}));
      if (m.id === "establishments" && mayRank()) {
        block.push(el("fieldset", {className: "inline"}, [el("legend", {text: t("legend.colour_by")}),
          radio("est-color", "category", t("legend.by_category")), radio("est-color", "priority", t("legend.by_priority"))]));
      }
      parts.push(el("div", {className: "legend-block"}, block));
    });
    box.replaceChildren.apply(box, parts);
  }

  function radio(name, value, label) {
    var id = name + "-" + value;
    var input = el("input", {type: "radio", name: name, id: id, value: value,
      checked: state.establishmentColor === value ? "checked" : null,
      onchange: function () {
        state.establishmentColor = value;
        if (value === "priority" && !state.priority) loadPriority(false); else refresh();
      }});
    return el("span", {className: "radio"}, [input, el("label", {"for": id, text: label})]);
  }

  function fillYears(select, years, selected) {
    select.replaceChildren.apply(select, years.map(function (y) {
      return el("option", {value: y, selected: String(y) === String(selected) ? "selected" : null, text: String(y)});
    }));
    select.disabled = !years.length;
  }

  function setupTabs() {
    var tabs = Array.prototype.slice.call(document.querySelectorAll('[role="tab"]'));
    tabs.forEach(function (tab) {
      tab.addEventListener("click", function () { selectTab(tab); });
      tab.addEventListener("keydown", function (e) {
        var i = tabs.indexOf(tab);
        if (e.key === "ArrowRight" || e.key === "ArrowLeft") {
          var next = tabs[(i + (e.key === "ArrowRight" ? 1 : tabs.length - 1)) % tabs.length];
          selectTab(next); next.focus(); e.preventDefault();
        }
      });
    });
    function selectTab(tab) {
      var src = tab.getAttribute("data-script");  // a view's script, loaded when the view is first opened
      if (src && !document.querySelector('script[src="' + src + '"]')) document.body.appendChild(el("script", {src: src}));
      tabs.forEach(function (t) {
        var on = t === tab;
        t.setAttribute("aria-selected", on ? "true" : "false");
        t.tabIndex = on ? 0 : -1;
        $(t.getAttribute("aria-controls")).hidden = !on;
      });
    }
  }

  function setupControls() {
    renderToggles();
    renderLegend();
    setupTabs();
    $("search").addEventListener("submit", function (e) { e.preventDefault(); search($("search-input").value); });
    $("panel-close").addEventListener("click", closePanel);
    // Escape closes what is open, the innermost first: search results, the panel, the side bar on a phone
    document.addEventListener("keydown", function (e) {
      if (e.key !== "Escape") return;
      if (closeResults()) return;
      if (!$("panel").hidden) { closePanel(); return; }
      if (narrow() && sidebarOpen()) { setSidebar(false); $("sidebar-toggle").focus(); }
    });
    $("sidebar-toggle").addEventListener("click", function () { setSidebar(!sidebarOpen()); });
    setSidebar(!narrow());
    document.querySelector(".skip").addEventListener("click", function () { setSidebar(true); });
    $("lang-switch").addEventListener("click", function () {
      try { localStorage.setItem("twin-lang", this.getAttribute("data-lang")); } catch (err) { /* not kept */ }
    });
    $("year-select").addEventListener("change", function (e) { state.year = Number(e.target.value); refresh(); });
    $("inspection-year").addEventListener("change", function (e) { state.inspectionYear = Number(e.target.value); refresh(); });
    $("api-key-form").addEventListener("submit", function (e) {
      e.preventDefault();
      storeKey($("api-key").value.trim() || null);
      reported = {};
      keyState(state.apiKey ? t("access.checking") : "", null);
      checkKey().then(function (valid) {
        if (!valid) return;  // dropKey said why
        if (!state.apiKey) { who = {role: "anonymous", org_code: null, authenticated: false}; renderWho(); }
        keyState(state.apiKey ? t("access.set") : t("access.removed"), null);
        say(state.apiKey ? t("access.set") : t("access.removed"), "info");
        $("api-key").value = "";
        loadConfig().then(function () { refresh(); loadHousing(); });
        if (lastContext && !$("panel").hidden) showContext(lastContext.query, lastContext.title, lastContext.extra);
        document.dispatchEvent(new CustomEvent("twin:apikey"));
      });
    });
    $("reset-view").addEventListener("click", function () { flyTo(Object.assign({}, cfg.deck.initialViewState)); });
  }

  /* the side bar: always shown on a wide screen, folded away on a phone until asked for */
  function narrow() { return window.matchMedia("(max-width: 700px)").matches; }
  function sidebarOpen() { return !document.body.classList.contains("sidebar-closed"); }
  function setSidebar(open) {
    document.body.classList.toggle("sidebar-closed", !open);
    $("sidebar-toggle").setAttribute("aria-expanded", open ? "true" : "false");
  }

  var configLoad = null;
  function loadConfig() {
    configLoad = getJson("/map/config.json").then(function (c) {
      state.planMethods = c.plan_methods || [];
      var years = c.deposition_years || [];
      state.year = years.length ? years[years.length - 1] : null;
      fillYears($("year-select"), years, state.year);
      var iy = c.inspection_years || [];
      state.inspectionYear = iy.length ? iy[iy.length - 1] : null;
      fillYears($("inspection-year"), iy, state.inspectionYear);
      return c;
    }).catch(function (err) {
      fillYears($("year-select"), [], null);
      fillYears($("inspection-year"), [], null);
      say(describeError(t("status.config"), err), "warning");
      return null;
    });
    return configLoad;
  }

  // ---------------------------------------------------------------------------------------------------
  // start
  var deckgl = null;
  var interaction = {};

  /* true when the camera is still and every layer (every tile in view) has loaded */
  function isIdle() {
    if (!deckgl || !deckgl.layerManager) return false;
    if (interaction.inTransition || interaction.isDragging || interaction.isPanning || interaction.isZooming ||
        interaction.isRotating) return false;
    if (deckgl.needsRedraw({clearRedrawFlags: false})) return false;
    return deckgl.layerManager.getLayers().filter(function (l) { return !l.parent; })
      .every(function (l) { return l.isLoaded; });
  }

  function start() {
    setupControls();
    renderWho();
    checkKey();
    loadConfig().then(function () {
      initialTiled = tiledVisibleIds();
      deckgl = new D.Deck({
        parent: $("map"),
        initialViewState: Object.assign({}, cfg.deck.initialViewState),
        controller: {keyboard: true, doubleClickZoom: true, touchRotate: true},
        layers: buildLayers(),
        getTooltip: getTooltip,
        onClick: onClick,
        onViewStateChange: function (e) {
          var band = placeBand(state.viewState.zoom);
          state.viewState = e.viewState;
          if (placeBand(e.viewState.zoom) !== band) setTimeout(refresh, 0);  // other place names for this zoom
          return e.viewState;
        },
        onInteractionStateChange: function (s) { interaction = s; state.inTransition = !!s.inTransition; },
        onAfterRender: function () {
          metrics.frames += 1;
          if (metrics.firstRender === null) metrics.firstRender = performance.now() - T0;
          afterRender();
        },
        onError: function (err) { say(t("status.map_error", {message: err && err.message ? err.message : String(err)}), "error"); },
        useDevicePixels: true
      });
      api.deck = deckgl;
      // The housing analysis (a large GeoJSON, computed by the server) waits for the first frame: it would
      // compete with the start-up tiles for the server, the connections and the browser's main thread.
      setTimeout(afterFirstFrame, HOUSING_DEFER_MAX_MS);
    });
  }

  var api = {
    cfg: cfg,
    state: state,
    metrics: metrics,
    search: search,
    flyTo: flyTo,
    openPoint: openPoint,
    openEstablishment: openEstablishment,
    refresh: refresh,
    isIdle: isIdle,
    extend: function (x) { extensions.push(x); refresh(); },
    helpers: {el: el, fmt: fmt, rgba: rgba, escapeHtml: escapeHtml, getJson: getJson, postJson: postJson, say: say, t: t,
      num: num, pct: pct, describeError: describeError, bboxOf: bboxOf, flyToBounds: flyToBounds},
    /* the caller as /whoami describes it (role, org_code, authenticated) */
    who: function () { return who; },
    deck: null,
    /* pixel position of a lon/lat in the current view (for tests and tours) */
    project: function (lon, lat) {
      var vp = deckgl.getViewports()[0];
      return vp.project([lon, lat]);
    }
  };
  globalThis.twinMap = api;
  start();
})();
