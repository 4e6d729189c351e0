"""An overview picture of generated demo data over the municipality boundaries (matplotlib).

    python -m demo.plot DIR docs/img/demo-data.png
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import geopandas as gpd
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pyogrio  # noqa: E402
import rasterio  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from demo.geo import boundary_path  # noqa: E402

ZOOM = (163000.0, 441000.0, 193000.0, 471000.0)  # Gelderse Vallei and the western Veluwe
SECTOR_COLOURS = {"livestock": "#8c510a", "industry": "#2166ac", "other": "#6a3d9a"}


def _sector(sbi: pd.Series) -> pd.Series:
    s = sbi.astype(str)
    livestock = s.str.startswith("014")
    industry = s.str[:2].isin(["10", "16", "19", "20", "21", "22", "23", "24", "25", "31", "35", "38"])
    return pd.Series(np.where(livestock, "livestock", np.where(industry, "industry", "other")), index=sbi.index)


def plot(folder: Path, png: Path) -> None:
    """Draw the deposition raster, habitats, establishments, housing sites and (zoomed) buildings."""
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    files = {f["layer"]: folder / f["file"] for f in manifest["files"]}
    munis = gpd.read_file(files["municipalities"])
    provinces = gpd.read_file(boundary_path("nl_provincies_2023.gpkg"))
    est = pd.read_csv(files["establishments"], dtype=str)
    est["sector"] = _sector(est["sbi_code"])
    x, y = est["x_coord"].astype(float), est["y_coord"].astype(float)
    habitats = gpd.read_file(files["natura2000-habitats"])
    housing = gpd.read_file(files["housing-sites"]).to_crs("EPSG:28992")

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(18, 10.5), gridspec_kw={"width_ratios": [1.0, 1.05]})
    with rasterio.open(files["nitrogen-deposition"]) as ds:
        band = ds.count
        step = max(1, ds.width // 1400)
        data = ds.read(band, masked=True, out_shape=(ds.height // step, ds.width // step))
        left, bottom, right, top = ds.bounds
        year = ds.descriptions[band - 1]
    img = ax1.imshow(data, extent=(left, right, bottom, top), cmap="YlOrRd", vmin=800, vmax=4000,
                     interpolation="nearest")
    munis.boundary.plot(ax=ax1, color="#7f7f7f", linewidth=0.25)
    provinces.boundary.plot(ax=ax1, color="#333333", linewidth=0.7)
    habitats.plot(ax=ax1, color="#1a9850", edgecolor="none", alpha=0.9)
    rng = np.random.default_rng(0)
    sample = rng.random(len(est)) < min(1.0, 12000 / max(len(est), 1))
    for sector, colour in SECTOR_COLOURS.items():
        m = sample & (est["sector"] == sector).to_numpy()
        ax1.scatter(x[m], y[m], s=0.6, color=colour, linewidths=0, label=sector)
    housing.plot(ax=ax1, color="#e7298a", edgecolor="#e7298a", linewidth=0.8)
    zx0, zy0, zx1, zy1 = ZOOM
    ax1.plot([zx0, zx1, zx1, zx0, zx0], [zy0, zy0, zy1, zy1, zy0], color="black", linewidth=1.2)
    ax1.set_xlim(munis.total_bounds[0] - 3000, munis.total_bounds[2] + 3000)
    ax1.set_ylim(munis.total_bounds[1] - 3000, munis.total_bounds[3] + 3000)
    ax1.set_aspect("equal")
    ax1.set_title(f"Scale '{manifest['scale']}', seed {manifest['seed']}: total N deposition {year} (mol N/ha/yr),\n"
                  "Natura 2000 habitats (green), establishments (sample), housing sites (pink)", fontsize=10)
    fig.colorbar(img, ax=ax1, shrink=0.6, label="mol N/ha/yr")

    buildings = pyogrio.read_dataframe(files["buildings"], bbox=ZOOM)
    buildings.plot(ax=ax2, color="#8a8a8a", edgecolor="#8a8a8a", linewidth=0.35)
    kdw = habitats.cx[zx0:zx1, zy0:zy1]
    kdw.plot(ax=ax2, column="kdw", cmap="Greens_r", vmin=300, vmax=2200, edgecolor="#00441b", linewidth=0.2,
             alpha=0.8, missing_kwds={"color": "#d9f0d3", "edgecolor": "#00441b", "linewidth": 0.2})
    munis.boundary.plot(ax=ax2, color="#333333", linewidth=0.8)
    inside = (x > zx0) & (x < zx1) & (y > zy0) & (y < zy1)
    for sector, colour in SECTOR_COLOURS.items():
        m = inside & (est["sector"] == sector)
        ax2.scatter(x[m], y[m], s=7, color=colour, linewidths=0)
    housing.cx[zx0:zx1, zy0:zy1].plot(ax=ax2, facecolor="#e7298a55", edgecolor="#e7298a", linewidth=1.2)
    for _, r in munis.cx[zx0:zx1, zy0:zy1].iterrows():
        p = r.geometry.representative_point()
        if zx0 < p.x < zx1 and zy0 < p.y < zy1:
            ax2.annotate(r["name"], (p.x, p.y), fontsize=8, ha="center", color="#222222")
    ax2.set_xlim(zx0, zx1)
    ax2.set_ylim(zy0, zy1)
    ax2.set_aspect("equal")
    ax2.set_title("Gelderse Vallei and western Veluwe:\nbuildings, habitats (green by KDW), establishments, "
                  "housing sites", fontsize=10)
    handles = [
        Line2D([], [], marker="o", linestyle="", color=SECTOR_COLOURS["livestock"], label="livestock"),
        Line2D([], [], marker="o", linestyle="", color=SECTOR_COLOURS["industry"], label="industry, waste, energy"),
        Line2D([], [], marker="o", linestyle="", color=SECTOR_COLOURS["other"], label="other establishments"),
        Patch(color="#1a9850", label="Natura 2000 habitat (darker = lower KDW)"),
        Patch(facecolor="#e7298a55", edgecolor="#e7298a", label="planned housing site"),
        Patch(color="#9e9e9e", label="building (BAG pand)"),
    ]
    ax2.legend(handles=handles, loc="lower right", fontsize=8, framealpha=0.9)
    for ax in (ax1, ax2):
        ax.tick_params(labelsize=7)
    fig.text(0.01, 0.01, "Synthetic demo data (vth-twin). Boundaries: Bron: CBS, Kadaster (CC-BY 4.0). "
             "Coordinates: RD New (EPSG:28992).", fontsize=8)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    plot(Path(sys.argv[1]), Path(sys.argv[2]))
