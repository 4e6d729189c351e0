/* The map's deck.gl bundle (built by scripts/vendor-deckgl.sh): deck.gl 9.3.6, the version inside pydeck
 * 0.9.3's notebook bundle, with what the page, twin-deck.js and the pydeck JSON of frontend/deck.py use,
 * as the global `deck`. pydeck's bundle (4.3 MB) also carries the Jupyter widget, mapbox/maplibre, carto,
 * the aggregation and mesh layers and every loader; here esbuild keeps only what these exports need. */
export * from "@deck.gl/core";
export * from "@deck.gl/layers";
export {MVTLayer, TileLayer} from "@deck.gl/geo-layers";
export {JSONConverter, JSONConfiguration, _parseExpressionString} from "@deck.gl/json";
// the main-thread MVT parser: map.js parses the start-up tiles without the workers (deck.gl's default
// MVTWorkerLoader only parses in a worker, static/vendor/loaders.gl-mvt-4.4.3/mvt-worker.js)
export {MVTLoader} from "@loaders.gl/mvt";
