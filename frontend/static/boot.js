/* vth-twin map: starts the page's first data requests while the browser is still parsing the deck.gl
 * bundle, so that they are answered by the time the map script runs. The housing analysis
 * is not among them: the map asks for it after its first frame.
 * The language: ?lang= in the address wins and is remembered; without it, a language chosen earlier
 * (localStorage) reloads the page in that language before anything else is fetched. */
(function () {
  "use strict";
  try {
    var asked = new URLSearchParams(window.location.search).get("lang");
    var page = document.documentElement.lang;
    if (asked) {
      localStorage.setItem("twin-lang", page);
    } else {
      var kept = localStorage.getItem("twin-lang");
      if (kept && kept !== page && /^(nl|en)$/.test(kept)) {
        var u = new URL(window.location.href);
        u.searchParams.set("lang", kept);
        window.location.replace(u.toString());
        return;
      }
    }
  } catch (e) { /* no storage: the language of the address */ }
  var headers = {Accept: "application/json"};
  try {
    var key = sessionStorage.getItem("twin-api-key");
    if (key) headers["X-API-Key"] = key;
  } catch (e) { /* no session storage: anonymous */ }
  var started = {};
  ["/map/config.json"].forEach(function (url) {
    started[url] = fetch(url, {headers: headers});
  });
  globalThis.twinBoot = {
    /* the response promise of a started request, handed out once */
    take: function (url) {
      var p = started[url];
      delete started[url];
      return p;
    }
  };
})();
