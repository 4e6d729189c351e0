"""Data-quality defects planted in the demo data, and the truth file that says exactly what was planted.

Real VTH registrations are not clean: fields are left empty, establishments close while their permits stay
in force, the same KvK number turns up at places far apart, violations are never followed up, dates
contradict each other, a registered point lies far from the BAG address. The data-quality rules (issue 9)
must find such records, so the demo data holds a few of each, at small documented rates, chosen per
establishment with a seeded random stream (the same seed plants the same defects). Every planted record
still passes ingest validation: the defects are about meaning, not format.

Each establishment gets at most one defect, so the counts of different defects do not overlap.
`DIR/quality_truth.json` records per defect its definition, the records planted and the number of records
in the files that meet the definition (`expected`: planted plus any that the clean generator produced by
itself, e.g. establishments overdue for a visit because of the jitter of the visit schedule). All dates are
measured against the reference date of the demo data, never today.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import shapely

from demo import catalog as cat
from demo.geo import Geography
from demo.tables import REF, REF_ORD, Rand, iso

TRUTH_FILE = "quality_truth.json"
TRUTH_VERSION = 1

# Share of all establishments that get each establishment-level defect (disjoint). `no_valid_permit` is a
# share of the livestock and industrial establishments (drawn for those that got nothing else).
RATES: dict[str, float] = {
    "kvk_missing": 0.010,
    "postcode_missing": 0.005,
    "category_missing": 0.010,
    "ended": 0.030,  # establishments that closed; 40% of them keep a granted permit in force
    "kvk_far_apart": 0.0025,  # pairs: twice this share of establishments share a number
    "violation_not_followed_up": 0.025,  # only about a fifth qualify (a violation in the last three years)
    "inspection_before_start": 0.005,
    "location_far_from_address": 0.010,
    "overdue_inspection": 0.010,
}
ENDED_WITH_PERMIT_SHARE = 0.40
NO_PERMIT_RATE = 0.03
KVK_FAR_M = 10_000.0
ADDRESS_FAR_M = 250.0
VIOLATION = "voorschriften overtreden"

# Column positions in the permit and inspection rows of demo.tables.
P_ID, P_EST, P_STATUS, P_APPLIED, P_DECIDED, P_FROM, P_UNTIL = 0, 1, 5, 6, 7, 8, 9
I_ID, I_EST, I_DATE, I_RESULT, I_INTERVENTION, I_REPAIR, I_STATUS = 0, 1, 2, 4, 9, 10, 11


def is_livestock(sbi: str) -> bool:
    """SBI 01.4: animal husbandry."""
    return sbi.startswith("014")


def is_industrial(sbi: str) -> bool:
    """SBI divisions 10-33: manufacturing (section C)."""
    return sbi[:2].isdigit() and 10 <= int(sbi[:2]) <= 33


def years_before(day: dt.date, years: int) -> dt.date:
    """The same calendar day `years` earlier (28 Feb for 29 Feb), as PostgreSQL's date - interval 'n years'."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def house_number_int(text: str) -> int | None:
    digits = ""
    for ch in text:
        if not ch.isdigit():
            break
        digits += ch
    return int(digits) if digits else None


@dataclass
class Plan:
    """Which establishment (row index of the establishment frame) gets which defect, and what changed."""

    kind: dict[int, str] = field(default_factory=dict)
    no_permit: set[int] = field(default_factory=set)
    kvk_pairs: list[tuple[int, int]] = field(default_factory=list)
    ended_on: dict[int, int] = field(default_factory=dict)  # ordinal
    started_on: dict[int, int] = field(default_factory=dict)  # ordinal, moved after the first inspection
    planted: dict[str, list[str]] = field(default_factory=dict)  # defect -> record ids

    def add(self, defect: str, record: str) -> None:
        self.planted.setdefault(defect, []).append(record)


def plan_defects(est: pd.DataFrame, seed: int) -> Plan:
    """Draw the establishment-level defects. Those that depend on permits and inspections are checked for
    eligibility when the chunk is generated (`apply_chunk`) and dropped when they cannot apply."""
    r = Rand(seed, 41)
    kinds = list(RATES)
    cum = np.cumsum([RATES[k] for k in kinds])
    plan = Plan()
    sbi = est["sbi_code"].to_numpy()
    for i in range(len(est)):
        u = r.u()
        k = int(np.searchsorted(cum, u, side="right"))
        if k < len(kinds):
            plan.kind[i] = kinds[k]
        elif (is_livestock(sbi[i]) or is_industrial(sbi[i])) and r.u() < NO_PERMIT_RATE:
            plan.no_permit.add(i)
    # KvK pairs: the partner is an untouched establishment more than 10 km away.
    x, y = est["h_x"].to_numpy(), est["h_y"].to_numpy()
    taken = set(plan.kind) | plan.no_permit
    for i in sorted(i for i, k in plan.kind.items() if k == "kvk_far_apart"):
        for _ in range(50):
            j = r.randint(0, len(est))
            if j not in taken and math.hypot(x[i] - x[j], y[i] - y[j]) > KVK_FAR_M:
                plan.kvk_pairs.append((i, j))
                taken.add(j)
                break
        else:
            del plan.kind[i]
    return plan


def apply_establishment_fields(est: pd.DataFrame, plan: Plan) -> pd.DataFrame:
    """Empty fields, shared KvK numbers, end dates and moved start dates (after the chunks ran)."""
    est = est.copy()
    ids = est["inrichting_id"].to_numpy()
    for i, kind in sorted(plan.kind.items()):
        col = {"kvk_missing": "kvk_nummer", "postcode_missing": "postcode",
               "category_missing": "milieucategorie"}.get(kind)
        if col is not None:
            est.iat[i, est.columns.get_loc(col)] = ""
            plan.add(kind, str(ids[i]))
    kvk = est.columns.get_loc("kvk_nummer")
    for i, j in plan.kvk_pairs:
        est.iat[j, kvk] = est.iat[i, kvk]
        plan.add("kvk_far_apart", str(ids[i]))
        plan.add("kvk_far_apart", str(ids[j]))
    end_col, start_col = est.columns.get_loc("datum_einde"), est.columns.get_loc("aanvang")
    for i, day in sorted(plan.ended_on.items()):
        est.iat[i, end_col] = iso(day)
    for i, day in sorted(plan.started_on.items()):
        est.iat[i, start_col] = iso(day)
    return est


def unique_addresses(est: pd.DataFrame) -> pd.DataFrame:
    """Make postcode + house number unique among establishments (two random draws may meet), so that
    every establishment has exactly one BAG address to be compared with."""
    seen: set[tuple[str, int]] = set()
    numbers: list[str] = []
    for pc, hn in zip(est["postcode"].tolist(), est["huisnummer"].tolist(), strict=True):
        n = house_number_int(hn)
        assert n is not None
        suffix = hn[len(str(n)):]
        while (pc, n) in seen:
            n += 2
        seen.add((pc, n))
        numbers.append(f"{n}{suffix}")
    return est.assign(huisnummer=numbers)


def _d(text: str) -> int | None:
    return dt.date.fromisoformat(text).toordinal() if text else None


def _day(text: str) -> int:
    return dt.date.fromisoformat(text).toordinal()


def apply_chunk(part: pd.DataFrame, lo: int, permits: list[tuple[str, ...]], inspections: list[tuple[str, ...]],
                plan: Plan, seed: int, chunk: int) -> tuple[list[tuple[str, ...]], list[tuple[str, ...]]]:
    """Plant the defects that live in permits and inspections of one chunk of establishments (row `lo`
    onwards); record end dates and moved start dates in the plan."""
    r = Rand(seed, 42, chunk)
    by_est_p: dict[str, list[list[str]]] = {}
    by_est_i: dict[str, list[list[str]]] = {}
    for prow in permits:
        by_est_p.setdefault(prow[P_EST], []).append(list(prow))
    for irow in inspections:
        by_est_i.setdefault(irow[I_EST], []).append(list(irow))
    out_p: list[tuple[str, ...]] = []
    out_i: list[tuple[str, ...]] = []
    freq_col = part["h_freq"].to_numpy()
    started_col = part["h_started"].to_numpy()
    for k, eid in enumerate(part["inrichting_id"].to_numpy()):
        i = lo + k
        ps = by_est_p.get(eid, [])
        ins = by_est_i.get(eid, [])
        kind = plan.kind.get(i)
        if kind == "ended":
            _end(plan, i, eid, ps, ins, int(started_col[k]), r)
        elif kind == "violation_not_followed_up":
            ins = _drop_follow_up(plan, i, eid, ins, r)
        elif kind == "inspection_before_start":
            _start_late(plan, i, eid, ins, r)
        elif kind == "overdue_inspection":
            ins = _skip_visits(plan, i, eid, ins, int(freq_col[k]), int(started_col[k]), r)
        if i in plan.no_permit:
            if _valid_today(ps):
                plan.add("no_valid_permit", str(eid))
                ps = []
            else:
                plan.no_permit.discard(i)
        out_p.extend(tuple(p) for p in ps)
        out_i.extend(tuple(x) for x in ins)
    return out_p, out_i


def _valid_today(ps: Sequence[Sequence[str]]) -> bool:
    return any(p[P_STATUS] == "verleend" and (not p[P_FROM] or _day(p[P_FROM]) <= REF_ORD)
               and (not p[P_UNTIL] or _day(p[P_UNTIL]) >= REF_ORD) for p in ps)


def _end(plan: Plan, i: int, eid: str, ps: list[list[str]], ins: list[list[str]], started: int, r: Rand) -> None:
    """Close the establishment after its last permit decision and inspection; most permits are withdrawn on
    closure, those of 40% stay granted (the signal 'permit of an establishment that has ended')."""
    if any(p[P_STATUS] in ("aangevraagd", "in behandeling") for p in ps):
        del plan.kind[i]
        return
    days = [_d(p[c]) for p in ps for c in (P_APPLIED, P_DECIDED, P_FROM)] + [_d(x[I_DATE]) for x in ins]
    last = max([started, *(d for d in days if d is not None)])
    if last > REF_ORD - 60:
        del plan.kind[i]
        return
    ended = min(REF_ORD - 1, last + r.randint(30, 400))
    in_force = [p for p in ps if p[P_STATUS] == "verleend" and (not p[P_UNTIL] or _day(p[P_UNTIL]) > ended)]
    keep = bool(in_force) and r.u() < ENDED_WITH_PERMIT_SHARE
    plan.ended_on[i] = ended
    plan.add("ended", eid)
    if keep:
        plan.add("permit_after_end", eid)
        return
    for p in in_force:
        p[P_STATUS], p[P_UNTIL] = "ingetrokken", iso(ended)


def _drop_follow_up(plan: Plan, i: int, eid: str, ins: list[list[str]], r: Rand) -> list[list[str]]:
    """The latest violation of the last three years whose repair date has passed gets no intervention and no
    follow-up: the inspections after it are left out."""
    for k in range(len(ins) - 1, -1, -1):
        x = ins[k]
        if x[I_RESULT] == VIOLATION and x[I_REPAIR] and _day(x[I_REPAIR]) < REF_ORD - 30 \
                and _day(x[I_DATE]) >= REF_ORD - 3 * 365:
            x[I_INTERVENTION] = "geen" if r.u() < 0.5 else ""
            x[I_STATUS] = ""
            plan.add("violation_not_followed_up", x[I_ID])
            return ins[:k + 1]
    del plan.kind[i]
    return ins


def _start_late(plan: Plan, i: int, eid: str, ins: list[list[str]], r: Rand) -> None:
    """The registered start date falls after the first inspection (and before the second)."""
    if not ins:
        del plan.kind[i]
        return
    first = _day(ins[0][I_DATE])
    nxt = _day(ins[1][I_DATE]) if len(ins) > 1 else REF_ORD
    room = min(180, nxt - first - 1)
    if room < 1:
        del plan.kind[i]
        return
    plan.started_on[i] = first + 1 + r.randint(0, room)
    plan.add("inspection_before_start", ins[0][I_ID])


def _skip_visits(plan: Plan, i: int, eid: str, ins: list[list[str]], freq: int, started: int,
                 r: Rand) -> list[list[str]]:
    """No visit for 1.1 to 1.5 times the visit-frequency period: the inspections of that period are left
    out. Only establishments visited at least every five years that started long enough ago."""
    due = years_before(REF, freq).toordinal()
    if freq > 5 or started > years_before(REF, 2 * freq).toordinal() or not ins:
        del plan.kind[i]
        return ins
    if all(_day(x[I_DATE]) <= due for x in ins):
        del plan.kind[i]  # overdue by itself already: counted in `expected`
        return ins
    cutoff = REF_ORD - int(freq * 365.25 * (1.1 + 0.4 * r.u()))
    kept = [x for x in ins if _day(x[I_DATE]) <= cutoff]
    plan.add("overdue_inspection", eid)
    return kept


# --- addresses -----------------------------------------------------------------------------------------

ADDRESS_COLUMNS = ("identificatie", "openbare_ruimte_naam", "huisnummer", "huisletter", "toevoeging", "postcode",
                   "woonplaats_naam", "gemeentecode")
ESTABLISHMENT_ADDRESS_BASE = 8_000_000_000  # id block of the establishments' addresses in each municipality


def establishment_addresses(geo: Geography, est: pd.DataFrame, plan: Plan,
                            seed: int) -> tuple[dict[str, Any], set[tuple[str, int]]]:
    """One BAG address per establishment, within 20 m of its point (its building), with the postcode and
    house number of the registration (the original postcode where the registration left it empty). For the
    planted `location_far_from_address` defects the address lies 400 m to 3 km away, in the same
    municipality. Returns the columns and the (postcode, number) keys taken."""
    r = Rand(seed, 43)
    munis = geo.municipalities.geometry.values
    n = len(est)
    xs, ys = np.empty(n), np.empty(n)
    ids = est["inrichting_id"].to_numpy()
    hx, hy, hm = est["h_x"].to_numpy(), est["h_y"].to_numpy(), est["h_muni"].to_numpy()
    numbers = np.empty(n, dtype=np.int64)
    letters: list[str | None] = []
    keys: set[tuple[str, int]] = set()
    postcodes = est["h_postcode"].to_numpy()
    for i, hn in enumerate(est["huisnummer"].to_numpy()):
        num = house_number_int(hn)
        assert num is not None
        numbers[i] = num
        letters.append(hn[len(str(num)):].upper() or None)
        keys.add((str(postcodes[i]), num))
        angle = 2 * math.pi * r.u()
        dist = 3 + 17 * r.u()
        if plan.kind.get(i) == "location_far_from_address":
            for _ in range(20):
                dist = 400 + 2600 * r.u()
                angle = 2 * math.pi * r.u()
                if shapely.contains_xy(munis[int(hm[i])], hx[i] + dist * math.cos(angle),
                                       hy[i] + dist * math.sin(angle)):
                    plan.add("location_far_from_address", str(ids[i]))
                    break
            else:
                del plan.kind[i]
                dist = 3 + 17 * r.u()
        xs[i] = round(hx[i] + dist * math.cos(angle), 2)
        ys[i] = round(hy[i] + dist * math.sin(angle), 2)
    for m in np.unique(hm):  # an address that the small offset put outside the municipality: at the point
        idx = np.flatnonzero(hm == m)
        out = idx[~shapely.contains_xy(munis[int(m)], xs[idx], ys[idx])]
        xs[out], ys[out] = hx[out], hy[out]
    codes = est["gemeentecode"].to_numpy()
    cols: dict[str, Any] = {
        "identificatie": np.array([f"{codes[i][2:]}01{ESTABLISHMENT_ADDRESS_BASE + i:010d}" for i in range(n)],
                                  dtype=object),
        "openbare_ruimte_naam": est["straat"].to_numpy(dtype=object),
        "huisnummer": numbers,
        "huisletter": np.array(letters, dtype=object),
        "toevoeging": np.full(n, None, dtype=object),
        "postcode": postcodes.astype(object),
        "woonplaats_naam": est["plaats"].to_numpy(dtype=object),
        "gemeentecode": codes.astype(object),
        "geometry": shapely.points(xs, ys),
    }
    return cols, keys


LETTER_PAIRS = tuple(a + b for a in cat.POSTCODE_LETTERS for b in cat.POSTCODE_LETTERS
                     if a + b not in ("SA", "SD", "SS"))
ADDRESSES_PER_POSTCODE = 18


def building_addresses(geo: Geography, m: int, geom: np.ndarray, use: np.ndarray, height: np.ndarray,
                       status: np.ndarray, taken: set[tuple[str, int]], seed: int) -> dict[str, Any] | None:
    """BAG addresses of the buildings of municipality `m`: one per house, shop, office or workshop, one
    per dwelling in blocks of flats (two per floor, numbered with an addition), none for barns and
    buildings under construction. Consecutive buildings share a street and a postcode (about 18 addresses
    each) from the municipality's range; a postcode + number an establishment uses is skipped."""
    rng = np.random.default_rng([seed, 44, m])
    has = (use != "overige gebruiksfunctie") & (status != "Bouw gestart")
    flats = has & np.char.startswith(use.astype(str), "woonfunctie") & (height >= 10.0)
    per = np.where(flats, 2 * np.floor(height / 3.1).astype(np.int64), has.astype(np.int64))
    if per.sum() == 0:
        return None
    code = str(geo.municipalities["code"].iloc[m])
    lo, hi = (int(v) for v in geo.postcode_ranges[m])
    span = max(1, hi - lo)
    cent = shapely.point_on_surface(geom[per > 0])
    bx, by = shapely.get_x(cent), shapely.get_y(cent)
    s = geo.settlements
    sk = np.flatnonzero(s.municipality == m)
    if len(sk):
        d = np.hypot(bx[:, None] - s.x[sk][None, :], by[:, None] - s.y[sk][None, :]) / s.sigma[sk][None, :]
        town = np.asarray(s.name, dtype=object)[sk][np.argmin(d, axis=1)]
    else:
        town = np.full(len(bx), str(geo.municipalities["name"].iloc[m]), dtype=object)
    industrial = np.char.startswith(use[per > 0].astype(str), "industrie")
    counts = per[per > 0]
    out_x: list[float] = []
    out_y: list[float] = []
    street_o: list[str] = []
    number_o: list[int] = []
    addition_o: list[str | None] = []
    pc_o: list[str] = []
    town_o: list[str] = []
    group, in_group, number = 0, 0, 1
    street = ""
    for b in range(len(counts)):
        if in_group == 0:
            street = str(cat.STREETS_INDUSTRIAL[int(rng.integers(len(cat.STREETS_INDUSTRIAL)))] if industrial[b]
                         else cat.STREETS_URBAN[int(rng.integers(len(cat.STREETS_URBAN)))])
            number = 1 + 2 * int(rng.integers(0, 20))
        postcode = f"{lo + (group // len(LETTER_PAIRS)) % span:04d}{LETTER_PAIRS[group % len(LETTER_PAIRS)]}"
        while (postcode, number) in taken:
            number += 2
        k = int(counts[b])
        for j in range(k):
            out_x.append(round(float(bx[b]) + float(rng.uniform(-2, 2)), 2))
            out_y.append(round(float(by[b]) + float(rng.uniform(-2, 2)), 2))
            street_o.append(street)
            number_o.append(number)
            addition_o.append(str(j + 1) if k > 1 else None)
            pc_o.append(postcode)
            town_o.append(str(town[b]))
        number += 2
        in_group += k
        if in_group >= ADDRESSES_PER_POSTCODE:
            group, in_group = group + 1, 0
    n = len(out_x)
    first = int(rng.integers(100_000, 900_000))
    return {
        "identificatie": np.array([f"{code[2:]}01{first + j * 3:010d}" for j in range(n)], dtype=object),
        "openbare_ruimte_naam": np.array(street_o, dtype=object),
        "huisnummer": np.array(number_o, dtype=np.int64),
        "huisletter": np.full(n, None, dtype=object),
        "toevoeging": np.array(addition_o, dtype=object),
        "postcode": np.array(pc_o, dtype=object),
        "woonplaats_naam": np.array(town_o, dtype=object),
        "gemeentecode": np.full(n, code, dtype=object),
        "geometry": shapely.points(out_x, out_y),
    }


# --- the truth file ----------------------------------------------------------------------------------------

DEFINITIONS: dict[str, tuple[str, str, str]] = {
    # defect: (layer whose records count, unit, definition)
    "kvk_missing": ("establishments", "establishment", "kvk_number is empty"),
    "postcode_missing": ("establishments", "establishment", "postcode is empty"),
    "category_missing": ("establishments", "establishment", "environmental_category is empty"),
    "ended": ("establishments", "establishment", "ended_on is set (not a defect by itself)"),
    "permit_after_end": ("establishments", "establishment",
                         "ended_on is set and a permit of the establishment has status 'verleend' and valid_until "
                         "empty or after ended_on"),
    "permits_after_end": ("permits", "permit",
                          "status 'verleend', valid_until empty or after the ended_on of its establishment"),
    "no_valid_permit": ("establishments", "establishment",
                        "SBI 01.4x (livestock) or division 10-33 (industry), ended_on empty, and no permit with "
                        "status 'verleend', valid_from empty or <= reference date and valid_until empty or >= "
                        "reference date"),
    "kvk_far_apart": ("establishments", "establishment",
                      "kvk_number shared with another establishment more than 10 km away"),
    "violation_not_followed_up": ("inspections", "inspection",
                                  "result 'voorschriften overtreden', repair_deadline before the reference date, "
                                  "intervention 'geen' or empty, and no inspection of the establishment on a later "
                                  "date"),
    "inspection_before_start": ("inspections", "inspection", "inspected_on before the establishment's started_on"),
    "location_far_from_address": ("establishments", "establishment",
                                  "the address with the same postcode and house number (leading digits) lies "
                                  "more than 250 m from the establishment's point"),
    "no_address": ("establishments", "establishment",
                   "no address with the same postcode and house number (leading digits)"),
    "overdue_inspection": ("establishments", "establishment",
                           "ended_on empty, started_on <= reference date - visit_frequency_years years, and no "
                           "inspection after reference date - visit_frequency_years years"),
}


# The columns expected_counts reads from each CSV.
TRUTH_COLUMNS: dict[str, tuple[str, ...]] = {
    "establishments": ("inrichting_id", "kvk_nummer", "sbi_code", "huisnummer", "postcode", "milieucategorie",
                       "bezoekfrequentie", "aanvang", "datum_einde", "x_coord", "y_coord"),
    "permits": ("inrichting_id", "status", "inwerkingtredingsdatum", "vervaldatum"),
    "inspections": ("controle_id", "inrichting_id", "datum_controle", "resultaat", "interventie", "hersteltermijn"),
}


def expected_counts(est: pd.DataFrame, permits: pd.DataFrame, inspections: pd.DataFrame,
                    addresses: pd.DataFrame) -> dict[str, int]:
    """The number of records meeting each definition in the written data (planted and natural).

    `est`, `permits`, `inspections` are the CSV columns as text; `addresses` has postcode, huisnummer, x, y.
    """
    ref = REF.isoformat()
    ended = est["datum_einde"] != ""
    out = {
        "kvk_missing": int((est["kvk_nummer"] == "").sum()),
        "postcode_missing": int((est["postcode"] == "").sum()),
        "category_missing": int((est["milieucategorie"] == "").sum()),
        "ended": int(ended.sum()),
    }
    end_of = est.set_index("inrichting_id")["datum_einde"]
    p_end = permits["inrichting_id"].map(end_of)
    after = (p_end != "") & (permits["status"] == "verleend") & \
        ((permits["vervaldatum"] == "") | (permits["vervaldatum"] > p_end))
    out["permit_after_end"] = int(permits.loc[after, "inrichting_id"].nunique())
    out["permits_after_end"] = int(after.sum())
    valid = (permits["status"] == "verleend") & ((permits["inwerkingtredingsdatum"] == "") |
                                                 (permits["inwerkingtredingsdatum"] <= ref)) & \
        ((permits["vervaldatum"] == "") | (permits["vervaldatum"] >= ref))
    with_valid = set(permits.loc[valid, "inrichting_id"])
    sector = est["sbi_code"].map(lambda s: is_livestock(s) or is_industrial(s))
    out["no_valid_permit"] = int((sector & ~ended & ~est["inrichting_id"].isin(with_valid)).sum())
    kvk = est[(est["kvk_nummer"] != "") & est["kvk_nummer"].duplicated(keep=False)]
    far = 0
    for _, g in kvk.groupby("kvk_nummer"):
        if len(g) < 2:
            continue
        xy = g[["x_coord", "y_coord"]].astype(float).to_numpy()
        d = np.hypot(xy[:, None, 0] - xy[None, :, 0], xy[:, None, 1] - xy[None, :, 1])
        far += int((d > KVK_FAR_M).any(axis=1).sum())
    out["kvk_far_apart"] = far
    last = inspections.groupby("inrichting_id")["datum_controle"].max()
    v = inspections[(inspections["resultaat"] == VIOLATION) & (inspections["hersteltermijn"] != "") &
                    (inspections["hersteltermijn"] < ref) & inspections["interventie"].isin(["geen", ""])]
    out["violation_not_followed_up"] = int((v["datum_controle"].to_numpy() >=
                                            v["inrichting_id"].map(last).to_numpy()).sum())
    start_of = est.set_index("inrichting_id")["aanvang"]
    out["inspection_before_start"] = int((inspections["datum_controle"] <
                                          inspections["inrichting_id"].map(start_of)).sum())
    a = addresses.assign(huisnummer=addresses["huisnummer"].astype(int))
    e = est[est["postcode"] != ""].assign(
        huisnummer=est["huisnummer"].map(house_number_int).astype("Int64"))
    e = e[e["huisnummer"].notna()].astype({"huisnummer": int})
    joined = e.merge(a, on=["postcode", "huisnummer"], how="left", suffixes=("", "_a"))
    dist = np.hypot(joined["x_coord"].astype(float) - joined["x"], joined["y_coord"].astype(float) - joined["y"])
    out["location_far_from_address"] = int(joined.loc[dist > ADDRESS_FAR_M, "inrichting_id"].nunique())
    matched = set(joined.loc[joined["x"].notna(), "inrichting_id"])
    out["no_address"] = int((~est["inrichting_id"].isin(matched)).sum())
    due = est["bezoekfrequentie"].map(lambda f: years_before(REF, int(f)).isoformat() if f else "")
    latest = est["inrichting_id"].map(last).fillna("")
    out["overdue_inspection"] = int((~ended & (due != "") & (est["aanvang"] <= due) & ~(latest > due)).sum())
    return out


def write_truth(out: Path, scale: str, seed: int, plan: Plan, expected: dict[str, int],
                rows: dict[str, int]) -> Path:
    """`DIR/quality_truth.json`: per defect the definition, the planted records and the expected count."""
    planted_ids = {k: sorted(v) for k, v in plan.planted.items()}
    permits_after_end = expected["permits_after_end"]
    defects = {}
    for name, (layer, unit, definition) in DEFINITIONS.items():
        ids = planted_ids.get(name, [])
        if name == "permits_after_end":
            ids = []
        elif name == "no_address":  # the registrations whose postcode was left empty find no address
            ids = planted_ids.get("postcode_missing", [])
        defects[name] = {
            "layer": layer, "unit": unit, "definition": definition,
            "draw_rate": RATES.get(name, NO_PERMIT_RATE if name == "no_valid_permit" else None),
            "planted": len(ids) if name != "permits_after_end" else permits_after_end,
            "expected": expected[name], "ids": ids,
        }
    doc = {
        "generator": "vth-twin demo-data", "version": TRUTH_VERSION, "scale": scale, "seed": seed,
        "reference_date": REF.isoformat(), "rows": rows,
        "note": "Counts as of the reference date. 'planted' records were changed on purpose (listed in 'ids'); "
                "'expected' counts every record in the files that meets the definition, planted or not.",
        "defects": defects,
    }
    path = out / TRUTH_FILE
    path.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path
