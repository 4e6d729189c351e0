/* vth-twin map: starts the page's first data requests while the browser is still parsing the deck.gl
 * bundle, so that they are answered by the time the map script runs. The housing analysis
 * is not among them: the map asks for it after its first frame. */
(function () {
  "use strict";
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
