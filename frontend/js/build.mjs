// Builds the map's deck.gl bundle into frontend/static/vendor/deckgl-<version>/ (run by
// scripts/vendor-deckgl.sh after `npm ci`): deckgl.min.js (entry.js, minified, the global `deck`) and
// LICENSES.txt (the licence of every npm package that has code in the bundle, from esbuild's metafile).
import {build} from "esbuild";
import {readFileSync, readdirSync, writeFileSync, mkdirSync} from "node:fs";
import {dirname, join} from "node:path";
import {fileURLToPath} from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const version = JSON.parse(readFileSync(join(here, "node_modules/@deck.gl/core/package.json"), "utf8")).version;
const outdir = join(here, "..", "static", "vendor", `deckgl-${version}`);
mkdirSync(outdir, {recursive: true});

const result = await build({
  entryPoints: [join(here, "entry.js")],
  bundle: true,
  minify: true,
  format: "iife",
  globalName: "deck",  // like pydeck's bundle: map.js, twin-deck.js and the pydeck JSON use globalThis.deck
  target: ["chrome100", "firefox100", "safari15"],
  legalComments: "none",  // the licences go to LICENSES.txt instead
  metafile: true,
  outfile: join(outdir, "deckgl.min.js"),
  logLevel: "warning",
});

// Every package with code in the bundle, with its version and licence text.
const packages = new Map();
for (const [input, info] of Object.entries(result.metafile.outputs[Object.keys(result.metafile.outputs)[0]].inputs)) {
  if (!info.bytesInOutput) continue;
  const m = input.match(/node_modules\/((?:@[^/]+\/)?[^/]+)\//);
  if (m) packages.set(m[1], (packages.get(m[1]) || 0) + info.bytesInOutput);
}
const parts = [];
for (const name of [...packages.keys()].sort()) {
  const dir = join(here, "node_modules", name);
  const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
  const file = readdirSync(dir).find((f) => /^(licen[cs]e|copying)/i.test(f));
  if (!file) throw new Error(`${name}: no licence file in the npm package`);
  parts.push(`${"=".repeat(78)}\n${name} ${pkg.version} (${pkg.license})\n${"=".repeat(78)}\n` +
    readFileSync(join(dir, file), "utf8").trim() + "\n");
}
writeFileSync(join(outdir, "LICENSES.txt"),
  `Third-party code in deckgl.min.js (built by scripts/vendor-deckgl.sh from frontend/js/), one section per npm package.\n\n` +
  parts.join("\n"));
console.log(`${outdir}/deckgl.min.js: ${packages.size} packages`);
