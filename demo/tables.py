"""Establishments (inrichtingen), permits (vergunningen/meldingen) and inspections (controles) for the
demo data, with the columns and vocabulary that VTH systems export (CIM-VTH-Flo).

Establishments are placed by sector: livestock in the countryside with the regional concentrations,
catering and shops in town centres, industry on industrial estates, heavy industry in the harbour and
chemical clusters. Permits and inspections are generated per establishment in chunks, with a stdlib
`random.Random` per chunk seeded from the user seed (fast, and stable across Python versions).
"""

from __future__ import annotations

import bisect
import datetime as dt
import heapq
import math
import random
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
import shapely
from shapely import STRtree

from demo import catalog as cat
from demo.geo import (
    FloatArray,
    Geography,
    fill,
    gaussian_drawer,
    greenhouse_intensity,
    intensity_drawer,
    livestock_intensity,
)
from layers.registry import ENVIRONMENTAL_CATEGORIES, INTERVENTIONS

REF = dt.date.fromisoformat(cat.REFERENCE_DATE)
REF_ORD = REF.toordinal()
WINDOW_DAYS = 3652  # ten years before the reference date
CAT_RANK = {c: i for i, c in enumerate(ENVIRONMENTAL_CATEGORIES)}

ESTABLISHMENT_COLUMNS = (
    "inrichting_id", "naam", "kvk_nummer", "vestigingsnummer", "sbi_code", "sbi_omschrijving", "rechtsvorm",
    "eenmanszaak", "straat", "huisnummer", "postcode", "plaats", "gemeentecode", "activiteiten",
    "milieucategorie", "type_activiteitenbesluit", "brzo", "bezoekfrequentie", "organisatie", "aanvang",
    "datum_einde", "x_coord", "y_coord",
)
PERMIT_COLUMNS = (
    "zaaknummer", "inrichting_id", "soort", "type_verlening", "activiteiten", "status", "datum_aanvraag",
    "datum_besluit", "inwerkingtredingsdatum", "vervaldatum", "nh3_emissie", "nox_emissie", "organisatie",
)
INSPECTION_COLUMNS = (
    "controle_id", "inrichting_id", "datum_controle", "type", "resultaat", "gedrag", "gevolg", "lhs_cel",
    "aard", "interventie", "hersteltermijn", "status_maatregel", "toezichthouder", "organisatie",
)

# How each sector is placed: "town" (around settlement centres, spread factor, population exponent),
# "estate" (industrial estates), "cluster" (harbour/chemical clusters), "rural" (livestock field),
# "greenhouse" (glastuinbouw field).
PLACEMENT: dict[str, tuple[str, float, float]] = {
    "livestock": ("rural", 0, 0), "rural_service": ("rural", 0, 0), "greenhouse": ("greenhouse", 0, 0),
    "industry": ("estate", 0, 0), "logistics": ("estate", 0, 0), "waste": ("estate", 0, 0),
    "heavy": ("cluster", 0, 0), "garage": ("town", 1.1, 1.0), "catering": ("town", 0.6, 1.12),
    "retail": ("town", 0.8, 1.0), "school": ("town", 1.0, 0.95), "services": ("town", 1.0, 1.0),
}
MEAN_AGE = {"livestock": 32.0, "greenhouse": 24.0, "rural_service": 22.0, "industry": 24.0, "heavy": 40.0,
            "garage": 18.0, "catering": 11.0, "waste": 18.0, "retail": 15.0, "school": 35.0, "services": 22.0,
            "logistics": 18.0}

# LHS matrix: intervention (index into INTERVENTIONS) per gedrag (A-D) and gevolg (1-4).
LHS_MATRIX = ((1, 1, 2, 3), (1, 2, 3, 4), (2, 3, 5, 6), (3, 5, 6, 6))
REPAIR_DAYS = {1: (28, 56), 2: (14, 42), 3: (28, 84), 4: (14, 28), 5: (28, 56), 6: (28, 56)}
GEVOLG_WEIGHTS = {"default": (0.30, 0.42, 0.22, 0.06), "heavy": (0.18, 0.40, 0.30, 0.12),
                  "waste": (0.22, 0.40, 0.28, 0.10)}


class Rand:
    """A thin, fast wrapper over `random.Random` that only uses `random()`, so results stay identical
    across Python versions."""

    def __init__(self, *key: int) -> None:
        state = np.random.SeedSequence(list(key)).generate_state(2)
        self._r = random.Random(int(state[0]) << 32 | int(state[1]))
        self.u = self._r.random

    def randint(self, lo: int, hi: int) -> int:
        """Integer in [lo, hi)."""
        return lo + int(self.u() * (hi - lo))

    def choice(self, seq: Sequence[Any]) -> Any:
        return seq[int(self.u() * len(seq))]

    def weighted(self, seq: Sequence[Any], cum: Sequence[float]) -> Any:
        return seq[min(bisect.bisect_right(cum, self.u() * cum[-1]), len(seq) - 1)]

    def poisson(self, lam: float) -> int:
        if lam <= 0:
            return 0
        if lam > 30:
            return max(0, round(lam + math.sqrt(lam) * self.normal()))
        k, p, limit = 0, 1.0, math.exp(-lam)
        while True:
            p *= self.u()
            if p <= limit:
                return k
            k += 1

    def normal(self) -> float:
        return math.sqrt(-2.0 * math.log(1.0 - self.u())) * math.cos(2 * math.pi * self.u())


def _cum(weights: Sequence[float]) -> list[float]:
    out, s = [], 0.0
    for w in weights:
        s += w
        out.append(s)
    return out


def iso(ordinal: int) -> str:
    return dt.date.fromordinal(ordinal).isoformat()


def largest_remainder(total: int, weights: Sequence[float]) -> list[int]:
    """Split `total` over `weights` into integers that sum to `total` exactly."""
    w = np.asarray(weights, dtype=np.float64)
    raw = total * w / w.sum()
    out = np.floor(raw).astype(np.int64)
    rest = total - int(out.sum())
    order = np.argsort(-(raw - out), kind="stable")
    out[order[:rest]] += 1
    return [int(v) for v in out]


def _region_settlements(geo: Geography) -> np.ndarray:
    return np.flatnonzero(geo.in_region[geo.settlements.municipality])


def _drawer(geo: Geography, sector: str) -> tuple[Any, bool]:
    kind, spread, expo = PLACEMENT[sector]
    s, e = geo.settlements, geo.estates
    if kind == "town":
        k = _region_settlements(geo)
        return gaussian_drawer(s.x[k], s.y[k], s.sigma[k] * spread, s.population[k] ** expo), False
    if kind in ("estate", "cluster"):
        k = np.flatnonzero(geo.in_region[e.municipality])
        if kind == "cluster" and (e.cluster[k]).any():
            c = k[e.cluster[k]]
            towns = k[~e.cluster[k]]
            big = towns[np.argsort(-e.weight[towns])[:20]]
            idx = np.concatenate([c, big])
            w = np.concatenate([e.weight[c] / e.weight[c].sum() * 0.75, e.weight[big] / e.weight[big].sum() * 0.25])
            return gaussian_drawer(e.x[idx], e.y[idx], e.sigma[idx], w), False
        k = k[~e.cluster[k]] if kind == "estate" else k
        return gaussian_drawer(e.x[k], e.y[k], e.sigma[k], e.weight[k]), False
    if kind == "rural":
        peak = cat.LIVESTOCK_BACKGROUND + max(a for *_, a in cat.LIVESTOCK_CONCENTRATIONS) * 1.3
        return intensity_drawer(geo.region_bounds, livestock_intensity, peak), True
    peak = cat.GREENHOUSE_BACKGROUND + max(c[3] for c in cat.GREENHOUSE_CONCENTRATIONS) * 1.2
    return intensity_drawer(geo.region_bounds, greenhouse_intensity, peak), True


def _cap_surname(name: str) -> str:
    return name[0].upper() + name[1:]


def _surname(r: Rand, province: str) -> str:
    if province in ("Fryslân", "Groningen") and r.u() < 0.55:
        return str(r.choice(cat.SURNAMES_NORTH))
    if province in ("Noord-Brabant", "Limburg") and r.u() < 0.55:
        return str(r.choice(cat.SURNAMES_SOUTH))
    return str(r.choice(cat.SURNAMES))


LEGAL_SUFFIX = {"Besloten Vennootschap": " B.V.", "Naamloze Vennootschap": " N.V.",
                "Vennootschap onder firma": " V.O.F.", "Commanditaire Vennootschap": " C.V.",
                "Coöperatie": " U.A."}

SECTOR_NAMES: dict[str, tuple[str, ...]] = {
    "0141": ("Melkveebedrijf {p}", "Melkveehouderij {p}", "Veehouderij {p}", "{p} Melkvee"),
    "0142": ("Kalverhouderij {p}", "Vleeskalverbedrijf {p}", "Rundveehouderij {p}"),
    "0145": ("Geitenhouderij {p}", "Schapenhouderij {p}", "Geitenboerderij {p}"),
    "0146": ("Varkenshouderij {p}", "Varkensbedrijf {p}", "{p} Varkens"),
    "01471": ("Pluimveebedrijf {p}", "Legpluimveebedrijf {p}", "{p} Eieren"),
    "0147": ("Pluimveebedrijf {p}", "Pluimveehouderij {p}", "Kuikenmesterij {p}"),
    "greenhouse": ("Kwekerij {p}", "{p} Glastuinbouw", "Tuinderij {p}", "{p} Kwekerijen"),
    "rural_service": ("Loonbedrijf {p}", "Agrarisch Loonwerk {p}", "Loonwerkbedrijf {p}"),
    "industry": ("{s} Metaal", "{p} Metaalbewerking", "{a} Kunststoffen", "{t} Staalbouw", "Houtindustrie {p}",
                 "{a} Industries", "Constructiebedrijf {p}", "{s} Productie", "{p} Techniek"),
    "1071": ("Bakkerij {p}", "Warme Bakker {p}", "{t} Broodfabriek"),
    "1011": ("Vleesverwerking {t}", "{a} Meat", "Slachthuis {t}"),
    "1012": ("Pluimveeslachterij {t}", "{a} Poultry"),
    "1051": ("Zuivelfabriek {t}", "{s} Dairy", "{a} Zuivel"),
    "1091": ("Veevoederbedrijf {p}", "{s} Diervoeders", "{a} Feed"),
    "3109": ("Meubelmakerij {p}", "{s} Interieurbouw"),
    "heavy": ("{a} Chemicals Nederland", "{a} Polymers", "{s} Raffinaderij", "Tankopslag {t}", "{a} Gases",
              "{s} Energie Centrale", "{a} Fertilizers", "{a} Terminals"),
    "garage": ("Autobedrijf {p}", "Garage {p}", "Autoservice {t}", "{p} Auto's", "Autoschade {p}",
               "Tankstation {t}", "Bandencentrale {p}"),
    "catering": ("Restaurant {n}", "Eetcafé {n}", "Café {n}", "Cafetaria {n}", "Snackbar {n}", "Grand Café {n}",
                 "Brasserie {n}", "Pizzeria {n}", "Herberg {n}"),
    "waste": ("{p} Recycling", "Milieustraat {t}", "{t} Afvalverwerking", "Autodemontage {p}",
              "Containerdienst {p}", "{s} Recycling"),
    "retail": ("Supermarkt {t} {r}", "Bouwmarkt {t}", "Tuincentrum {n}", "{p} Supermarkt"),
    "school": ("Basisschool {n}", "Openbare Basisschool {n}", "Kindcentrum {n}"),
    "services": ("Wasserij {p}", "Sportpark {n}", "Zwembad {n}", "Ziekenhuis {t}", "Sporthal {n}"),
    "logistics": ("Transportbedrijf {p}", "{p} Logistiek", "Opslag {t}", "Brandstoffenhandel {p}",
                  "Bouwbedrijf {p}", "Timmerbedrijf {p}", "{s} Transport"),
}


def _name(r: Rand, key: str, legal: str, surname: str, town: str, street: str) -> str:
    pattern = str(r.choice(SECTOR_NAMES[key]))
    person = f"{r.choice(cat.INITIALS)} {surname}" if legal == "Eenmanszaak" else _cap_surname(surname)
    if legal == "Maatschap" and "{p}" in pattern:
        person = f"{_cap_surname(surname)}-{_cap_surname(str(r.choice(cat.SURNAMES)))}"
    noun = str(r.choice(cat.PLACE_NOUNS))
    name = pattern.format(p=person, t=town, s=str(r.choice(cat.WORD_STEMS)), a=str(r.choice(cat.ACRONYMS)),
                          n=noun, r=street)
    if legal == "Maatschap" and "{p}" in pattern:
        name = "Maatschap " + name
    return name + LEGAL_SUFFIX.get(legal, "")


def make_establishments(geo: Geography, n: int, seed: int) -> pd.DataFrame:
    """`n` establishments in the region of `geo`, sorted by municipality and position, with the export
    columns plus hidden columns (prefixed `h_`) that drive permits, inspections and the raster."""
    classes = cat.SBI_CATALOGUE
    counts = largest_remainder(n, [c.weight for c in classes])
    parts: list[tuple[FloatArray, FloatArray, np.ndarray, np.ndarray]] = []
    for ci, (klass, count) in enumerate(zip(classes, counts, strict=True)):
        if count == 0:
            continue
        draw, rural = _drawer(geo, klass.sector)
        rng = np.random.default_rng([seed, 11, ci])
        x, y, mi = fill(rng, geo, count, draw, avoid_cores=rural)
        parts.append((x, y, mi, np.full(count, ci)))
    x = np.round(np.concatenate([p[0] for p in parts]), 2)
    y = np.round(np.concatenate([p[1] for p in parts]), 2)
    muni = np.concatenate([p[2] for p in parts])
    ci_all = np.concatenate([p[3] for p in parts])
    order = np.lexsort((ci_all, y, x, muni))
    x, y, muni, ci_all = x[order], y[order], muni[order], ci_all[order]

    s = geo.settlements
    _, nearest = STRtree(shapely.points(s.x, s.y)).query_nearest(shapely.points(x, y), all_matches=False)
    munis = geo.municipalities
    codes = munis["code"].to_numpy()
    provinces = munis["province_name"].to_numpy()

    r = Rand(seed, 12)
    rows: list[dict[str, Any]] = []
    kvk_off = r.randint(0, 89_999_999)
    ves_off = r.randint(0, 59_000_000_000)
    for i in range(len(x)):
        klass = classes[int(ci_all[i])]
        sector = klass.sector
        m = int(muni[i])
        cats = [c for c, _ in klass.categories]
        category = str(r.weighted(cats, _cum([w for _, w in klass.categories])))
        brzo = r.u() < klass.brzo
        heavy_cat = CAT_RANK[category] >= CAT_RANK["4.2"]
        if brzo or heavy_cat or r.u() < klass.type_c:
            ab = "C"
        elif r.u() < klass.type_a:
            ab = "A"
        else:
            ab = "B"
        if brzo:
            freq = 1
        elif ab == "C":
            freq = 1 if CAT_RANK[category] >= CAT_RANK["3.2"] else 3
        elif ab == "B":
            freq = 3 if CAT_RANK[category] >= CAT_RANK["3.1"] or sector == "catering" else 5
        else:
            freq = 10
        group = cat.LEGAL_FORMS[cat.SECTOR_LEGAL[sector]]
        legal = str(r.weighted([g for g, _ in group], _cum([w for _, w in group])))
        place_kind = PLACEMENT[sector][0]
        street = str(r.choice(cat.STREETS_RURAL if place_kind in ("rural", "greenhouse") else
                              cat.STREETS_INDUSTRIAL if place_kind in ("estate", "cluster") else cat.STREETS_URBAN))
        number = str(r.randint(1, 80 if place_kind in ("estate", "cluster") else 160))
        if r.u() < 0.07:
            number += str(r.choice("abc"))
        lo, hi = geo.postcode_ranges[m]
        postcode = f"{r.randint(int(lo), int(hi)):04d}{r.choice(cat.POSTCODE_LETTERS)}{r.choice(cat.POSTCODE_LETTERS)}"
        while postcode[-2:] in ("SA", "SD", "SS"):
            postcode = postcode[:4] + r.choice(cat.POSTCODE_LETTERS) + r.choice(cat.POSTCODE_LETTERS)
        town = s.name[int(nearest[i])]
        surname = _surname(r, str(provinces[m]))
        key = klass.code if klass.code in SECTOR_NAMES else sector
        acts = list(cat.SECTOR_ACTIVITIES[sector])
        k_act = min(len(acts), 1 + r.randint(1, 4))
        chosen = sorted({acts[r.randint(0, len(acts))] for _ in range(k_act)}, key=acts.index)
        age = min(75.0, 0.3 + -math.log(1.0 - r.u()) * MEAN_AGE[sector])
        started = REF_ORD - 30 - int(age * 365.25)
        z = r.normal()
        behaviour = 3 if z > 2.3 else 2 if z > 1.55 else 1 if z > 0.6 else 0
        nh3 = klass.nh3_kg * math.exp(0.6 * r.normal()) if klass.nh3_kg else 0.0
        nox = klass.nox_kg * math.exp(0.9 * r.normal()) if klass.nox_kg else 0.0
        kvk = 10_000_000 + ((i + kvk_off) * 7_368_787) % 90_000_000
        ves = 1_000_000 + ((i + ves_off) * 7_919_191_919) % 60_000_000_000
        rows.append({
            "inrichting_id": f"INR{i + 1:07d}",
            "naam": _name(r, key, legal, surname, town, street),
            "kvk_nummer": f"{kvk:08d}",
            "vestigingsnummer": f"{ves:012d}",
            "sbi_code": klass.code,
            "sbi_omschrijving": klass.description,
            "rechtsvorm": legal,
            "eenmanszaak": "ja" if legal == "Eenmanszaak" else "nee",
            "straat": street,
            "huisnummer": number,
            "postcode": postcode,
            "plaats": town,
            "gemeentecode": str(codes[m]),
            "activiteiten": "; ".join(chosen),
            "milieucategorie": category,
            "type_activiteitenbesluit": ab,
            "brzo": "ja" if brzo else "nee",
            "bezoekfrequentie": str(freq),
            "organisatie": geo.od_codes[m],
            "aanvang": iso(started),
            "datum_einde": "",
            "x_coord": f"{x[i]:.2f}",
            "y_coord": f"{y[i]:.2f}",
            "h_x": float(x[i]), "h_y": float(y[i]), "h_muni": m, "h_sector": sector, "h_started": started,
            "h_freq": freq, "h_ab": ab, "h_prop": math.exp(0.4 * z - 0.08), "h_behaviour": behaviour,
            "h_nh3": nh3, "h_nox": nox, "h_activities": tuple(chosen),
        })
    return pd.DataFrame(rows)


# --- permits -----------------------------------------------------------------------------------------

PERMIT_MIX = {
    "C": (("omgevingsvergunning", 0.62), ("melding", 0.16), ("maatwerkvoorschrift", 0.12),
          ("ontheffing", 0.06), ("gedoogbeschikking", 0.04)),
    "B": (("melding", 0.62), ("maatwerkvoorschrift", 0.16), ("omgevingsvergunning", 0.12),
          ("ontheffing", 0.06), ("gedoogbeschikking", 0.04)),
    "A": (("melding", 0.75), ("maatwerkvoorschrift", 0.25)),
}
PERMIT_RATE = {"C": 0.22, "B": 0.14, "A": 0.06}  # later decisions per year of operation
DECISION_DAYS = {"omgevingsvergunning": (40, 110), "melding": (0, 15), "maatwerkvoorschrift": (30, 120),
                 "ontheffing": (20, 80), "gedoogbeschikking": (20, 90)}
REFUSAL = {"omgevingsvergunning": 0.04, "melding": 0.0, "maatwerkvoorschrift": 0.03, "ontheffing": 0.08,
           "gedoogbeschikking": 0.15}


def _permit_rows(est: pd.DataFrame, seed: int, chunk: int) -> tuple[list[tuple[str, ...]], list[list[int]]]:
    """Permit rows of a chunk of establishments, and per establishment the dates its new or changed
    permits and notifications took effect (each is followed by an inspection)."""
    r = Rand(seed, 21, chunk)
    out: list[tuple[str, ...]] = []
    effective: list[list[int]] = []
    mixes = {k: ([t for t, _ in v], _cum([w for _, w in v])) for k, v in PERMIT_MIX.items()}
    for e in est.itertuples(index=False):
        ab: str = e.h_ab
        first = e.h_started - r.randint(0, 120)
        d1994 = dt.date(1994, 1, 1).toordinal()
        if first < d1994:
            first = d1994 + r.randint(0, 11 * 365)
        first = min(first, REF_ORD - 1)
        dates: list[tuple[int, str, str]] = []
        if ab != "A":
            dates.append((first, "omgevingsvergunning" if ab == "C" else "melding",
                          "verlening" if ab == "C" else "oprichting"))
        years = (REF_ORD - first) / 365.25
        for _ in range(r.poisson(PERMIT_RATE[ab] * years)):
            lo = first + 200
            if lo >= REF_ORD - 1:
                break
            kind = str(r.weighted(*mixes[ab]))
            if kind == "omgevingsvergunning":
                proc = "revisie" if r.u() < 0.25 else "wijziging"
            elif kind == "melding":
                proc = "verandering"
            else:
                proc = "verlening"
            dates.append((r.randint(lo, REF_ORD - 1), kind, proc))
        dates.sort()
        rows: list[list[str]] = []
        active_ov: list[int] = []
        est_num = int(e.inrichting_id[3:])
        took_effect: list[int] = []
        for k, (applied, kind, proc) in enumerate(dates):
            lo_d, hi_d = DECISION_DAYS[kind]
            big = kind == "omgevingsvergunning" and (proc == "revisie" or e.brzo == "ja")
            decided: int | None = applied + (r.randint(150, 200) if big else r.randint(lo_d, hi_d + 1))
            valid_from: int | None = None
            valid_until: int | None = None
            assert decided is not None
            if decided >= REF_ORD:
                status = "aangevraagd" if REF_ORD - applied < 21 else "in behandeling"
                decided = None
            elif r.u() < REFUSAL[kind]:
                status = "geweigerd"
            else:
                status = "verleend"
                if kind == "melding":
                    valid_from = max(decided, applied + 28)
                else:
                    valid_from = decided + (43 if big else 1)
                if kind == "ontheffing":
                    valid_until = valid_from + r.randint(365, 5 * 365)
                elif kind == "gedoogbeschikking":
                    valid_until = valid_from + r.randint(180, 730)
                elif kind == "omgevingsvergunning" and r.u() < 0.02:
                    valid_until = valid_from + r.randint(30, max(31, REF_ORD - valid_from))
                    status = "ingetrokken" if valid_until < REF_ORD else status
                if valid_until is not None and valid_until < REF_ORD and status == "verleend":
                    status = "vervallen"
            if kind == "omgevingsvergunning" and proc == "revisie" and status == "verleend" and valid_from:
                for j in active_ov:
                    prev = rows[j]
                    if prev[9] == "" and prev[5] == "verleend" and prev[8] and \
                            dt.date.fromisoformat(prev[8]).toordinal() < valid_from - 1:
                        prev[9] = iso(valid_from - 1)
                        if valid_from - 1 < REF_ORD:
                            prev[5] = "vervallen"
                active_ov = []
            year = dt.date.fromordinal(applied).year
            nh3 = nox = ""
            if kind in ("omgevingsvergunning", "melding"):
                trend = min(2.0, max(0.8, 1 + 0.025 * (2025 - year)))
                if e.h_nh3 > 0:
                    nh3 = f"{e.h_nh3 * trend * (0.92 + 0.16 * r.u()):.1f}"
                if e.h_nox > 0:
                    nox = f"{e.h_nox * (trend - 0.005 * (2025 - year)) * (0.92 + 0.16 * r.u()):.1f}"
            acts = e.h_activities
            k_act = 1 + r.randint(0, len(acts))
            start = r.randint(0, len(acts))
            chosen = [acts[(start + j) % len(acts)] for j in range(k_act)]
            rows.append([
                f"Z-{year}-{est_num:07d}-{k + 1:02d}", e.inrichting_id, kind, proc,
                "; ".join(sorted(chosen, key=acts.index)), status, iso(applied),
                iso(decided) if decided else "", iso(valid_from) if valid_from else "",
                iso(valid_until) if valid_until else "", nh3, nox, e.organisatie,
            ])
            if kind == "omgevingsvergunning" and status == "verleend" and valid_until is None:
                active_ov.append(len(rows) - 1)
            if kind in ("omgevingsvergunning", "melding") and valid_from and status != "geweigerd":
                took_effect.append(valid_from)
        out.extend(tuple(row) for row in rows)
        effective.append(took_effect)
    return out, effective


# --- inspections -------------------------------------------------------------------------------------

def inspector_pools(est: pd.DataFrame, seed: int) -> dict[str, list[str]]:
    """Fictitious inspectors (toezichthouders) per omgevingsdienst."""
    pools: dict[str, list[str]] = {}
    for o, (org, count) in enumerate(sorted(est["organisatie"].value_counts().items())):
        r = Rand(seed, 31, o)
        size = int(min(60, 4 + count // 500))
        names: set[str] = set()
        while len(names) < size:
            names.add(f"{r.choice(cat.INITIALS)} {r.choice(cat.SURNAMES)}")
        pools[str(org)] = sorted(names)
    return pools


def _inspection_rows(est: pd.DataFrame, effective: list[list[int]], pools: dict[str, list[str]], seed: int,
                     chunk: int) -> list[tuple[str, ...]]:
    r = Rand(seed, 32, chunk)
    out: list[tuple[str, ...]] = []
    results_ok = ("voorschriften nageleefd", "akkoord na aanwijzing", "nader onderzoek noodzakelijk",
                  "voorschriften niet van toepassing")
    ok_cum = _cum((0.86, 0.07, 0.035, 0.035))
    for e, took_effect in zip(est.itertuples(index=False), effective, strict=True):
        start = max(REF_ORD - WINDOW_DAYS, e.h_started + 30)
        if start >= REF_ORD:
            continue
        sector: str = e.h_sector
        pool = pools[e.organisatie]
        own = pool[r.randint(0, len(pool))]
        period = e.h_freq * 365.25
        heap: list[tuple[int, int, str, int, int]] = []  # date, seq, kind, chain, row of the measure
        seq = 0
        t = start + r.u() * period
        while t < REF_ORD:
            heap.append((int(t), seq, "routine", 0, -1))
            seq += 1
            t += period * (0.8 + 0.4 * r.u())
        for day in took_effect:  # an inspection some months after a new or changed permit took effect
            day += r.randint(30, 200)
            if start <= day < REF_ORD:
                heap.append((day, seq, "routine", 0, -1))
                seq += 1
        for _ in range(r.poisson(cat.SECTOR_COMPLAINT_RATE[sector] * (REF_ORD - start) / 365.25)):
            heap.append((r.randint(start, REF_ORD), seq, "complaint", 0, -1))
            seq += 1
        heapq.heapify(heap)
        violations: list[int] = []
        rows: list[list[str]] = []
        est_num = int(e.inrichting_id[3:])
        gw = _cum(GEVOLG_WEIGHTS.get(sector, GEVOLG_WEIGHTS["default"]))
        base = cat.SECTOR_VIOLATION_RATE[sector] * e.h_prop
        while heap:
            day, _, kind, chain, measure_row = heapq.heappop(heap)
            recent = sum(1 for v in violations if day - v < 5 * 365)
            if kind == "re-inspection":
                p = min(0.6, 0.18 * e.h_prop * (1 + 0.25 * chain))
            else:
                p = base * (1.6 if kind == "complaint" else 1.0) * (1.3 if recent else 1.0)
            p = min(p, 0.85)
            row = [f"CTR-{est_num:07d}-{len(rows) + 1:03d}", e.inrichting_id, iso(day), kind, "", "", "", "",
                   "", "", "", "", own if r.u() < 0.75 else pool[r.randint(0, len(pool))], e.organisatie]
            aard_prev = rows[measure_row][8] if measure_row >= 0 else ""
            if r.u() < p:
                gedrag = min(3, e.h_behaviour + (1 if recent >= 3 else 0))
                gevolg = int(r.weighted((0, 1, 2, 3), gw))
                level = min(6, LHS_MATRIX[gedrag][gevolg] + min(chain, 2))
                lo, hi = REPAIR_DAYS[level]
                repair = day + r.randint(lo, hi + 1)
                aard = aard_prev if measure_row >= 0 else str(r.choice(cat.VIOLATIONS[sector]))
                row[4:12] = ["voorschriften overtreden", "ABCD"[gedrag], str(gevolg + 1),
                             f"{'ABCD'[gedrag]}{gevolg + 1}", aard, INTERVENTIONS[level], iso(repair), ""]
                if measure_row >= 0:
                    rows[measure_row][11] = "uitgewerkt"
                violations.append(day)
                rows.append(row)
                if r.u() < 0.03:
                    row[11] = "ingetrokken"
                    continue
                follow = repair + r.randint(1, 22)
                if follow < REF_ORD and chain < 4:
                    heapq.heappush(heap, (follow, seq, "re-inspection", chain + 1, len(rows) - 1))
                    seq += 1
                    row[11] = "in uitvoering"
                else:
                    row[11] = "opgelegd" if repair >= REF_ORD else "in uitvoering"
                continue
            if kind == "re-inspection":
                result = "voorschriften nageleefd" if r.u() < 0.9 else "akkoord na aanwijzing"
                rows[measure_row][11] = "uitgevoerd"
            else:
                result = str(r.weighted(results_ok, ok_cum))
            row[4] = result
            if result == "akkoord na aanwijzing":
                row[8] = aard_prev if measure_row >= 0 else str(r.choice(cat.VIOLATIONS[sector]))
                row[9] = "geen"
            rows.append(row)
        out.extend(tuple(row) for row in rows)
    return out


def iter_permits_inspections(
    est: pd.DataFrame, seed: int, chunk_size: int
) -> Iterator[tuple[list[tuple[str, ...]], list[tuple[str, ...]]]]:
    """Permit rows and inspection rows (the ten years before the reference date), one pair of lists per
    chunk of establishments, each sorted by establishment and then date."""
    pools = inspector_pools(est, seed)
    for c, lo in enumerate(range(0, len(est), chunk_size)):
        part = est.iloc[lo:lo + chunk_size]
        permits, effective = _permit_rows(part, seed, c)
        yield permits, _inspection_rows(part, effective, pools, seed, c)
