/* vth-twin: deck.gl JSON helpers, referenced from the pydeck JSON as {"@@function": "name"}.
 * Loaded by the map page, and usable from notebooks as a pydeck custom library named "TwinDeck". */
(function (root) {
  "use strict";

  /* renderSubLayers for raster TileLayers (XYZ basemap, deposition PNG tiles): one BitmapLayer per tile. */
  function bitmapTiles() {
    return function (props) {
      var bbox = props.tile.boundingBox;
      return new root.deck.BitmapLayer(props, {
        data: null,
        image: props.data,
        bounds: [bbox[0][0], bbox[0][1], bbox[1][0], bbox[1][1]]
      });
    };
  }

  root.TwinDeck = {bitmapTiles: bitmapTiles};
})(globalThis);
