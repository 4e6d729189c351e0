"""The layer registry: one declarative spec per layer of the twin.

The API (what to serve, to whom), the ingest (what a layer's table looks like, which source columns map
to which field) and the map (how to draw it) all read these specs. Adding a layer means adding one spec
here, one table in a migration and, where the source needs it, one reader mapping.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Literal

from layers.kdw import kdw_table

FieldType = Literal["text", "int", "float", "bool", "date"]
GeometryType = Literal["Point", "Polygon", "MultiPolygon", "Geometry"]
Access = Literal["public", "restricted"]

SCHEMA = "twin"
STORAGE_SRID = 28992

# LHS (Landelijke Handhavingsstrategie) matrix: gedrag (behaviour) A-D against gevolg (consequence) 1-4.
LHS_GEDRAG = ("A", "B", "C", "D")
LHS_GEVOLG = ("1", "2", "3", "4")
LHS_CELLS = tuple(g + c for g in LHS_GEDRAG for c in LHS_GEVOLG)

# VNG "Bedrijven en milieuzonering" environmental categories and their guide distances (metres) to a
# quiet residential area.
GUIDE_DISTANCES_M: dict[str, int] = {
    "1": 10,
    "2": 30,
    "3.1": 50,
    "3.2": 100,
    "4.1": 200,
    "4.2": 300,
    "5.1": 500,
    "5.2": 700,
    "5.3": 1000,
    "6": 1500,
}
ENVIRONMENTAL_CATEGORIES = tuple(GUIDE_DISTANCES_M)

INSPECTION_RESULTS = (
    "voorschriften nageleefd",
    "voorschriften overtreden",
    "akkoord na aanwijzing",
    "nader onderzoek noodzakelijk",
    "voorschriften niet van toepassing",
)
INSPECTION_KINDS = ("routine", "complaint", "re-inspection")
PERMIT_TYPES = ("omgevingsvergunning", "melding", "ontheffing", "gedoogbeschikking", "maatwerkvoorschrift")
PERMIT_STATUSES = ("aangevraagd", "in behandeling", "verleend", "geweigerd", "ingetrokken", "vervallen")
INTERVENTIONS = (
    "geen",
    "waarschuwing",
    "hersteltermijn",
    "last onder dwangsom",
    "bestuursdwang",
    "bestuurlijke boete",
    "proces-verbaal",
)
# KDW (critical deposition value, mol N/ha/yr) per habitat type (Van Dobben et al. 2012), read from the data
# file layers/data/kdw.csv (layers/kdw.py; its source and status in kdw.source.md). Used when a habitat map has
# no KDW column (the BIJ12 habitat type map carries only the codes). The shipped list is partial: a user adds
# the missing types with TWIN_KDW_FILE (layers.kdw.kdw_table). Codes are normalised (H7140_B -> H7140B).
KDW_BY_HABITAT_TYPE: dict[str, float] = kdw_table()
HOUSING_PHASES = ("idee", "planvorming", "vastgesteld", "in aanbouw")
# Omgevingswet (since 1 January 2024): a milieubelastende activiteit of the Besluit activiteiten leefomgeving
# (Bal) needs a permit, a notification or information beforehand; it replaces the Activiteitenbesluit's
# types A, B and C (kept for older deliveries).
BAL_REGIMES = ("vergunningplichtig", "meldingsplichtig", "informatieplichtig")
FOLLOW_UP_STATUSES = ("opgelegd", "in uitvoering", "uitgevoerd", "uitgewerkt", "ingetrokken")


@dataclass(frozen=True)
class FieldSpec:
    """One attribute of a layer: its column, type, meaning and the source names it is known by."""

    name: str
    type: FieldType
    description: str
    aliases: tuple[str, ...] = ()
    required: bool = False
    enum: tuple[str, ...] | None = None
    personal: bool = False  # personal data under the AVG when the establishment is a sole proprietor
    public: bool = True  # served in public views (tiles, anonymous items)
    unit: str | None = None
    # Prefixes some sources write before the value, removed on load (the 3D BAG's NL.IMBAG.Pand.).
    strip_prefixes: tuple[str, ...] = ()
    # When the file has no column for this field, the column of that field serves for both (a KvK export's
    # vestigingsnummer is the establishment id when nothing else is).
    fallback: str | None = None


@dataclass(frozen=True)
class StyleSpec:
    """Default map style: RGBA colours, line width, optional extrusion field."""

    fill: tuple[int, int, int, int] = (80, 120, 200, 140)
    line: tuple[int, int, int, int] = (40, 40, 40, 200)
    line_width_m: float = 1.0
    radius_m: float = 60.0
    extrude_field: str | None = None
    color_field: str | None = None


@dataclass(frozen=True)
class LayerSpec:
    """A vector layer (OGC API collection) of the twin."""

    id: str
    title: str
    description: str
    table: str
    geometry_type: GeometryType
    key: str  # natural key, unique; the feature id in the API
    fields: tuple[FieldSpec, ...]
    access: Access = "public"
    time_field: str | None = None
    style: StyleSpec = field(default_factory=StyleSpec)
    min_zoom: int = 0
    max_zoom: int = 22
    depends_on: tuple[str, ...] = ()
    label_field: str | None = None
    # A virtual collection (see :func:`subset_layer`): the rows of ``table`` with these field values, served
    # under its own id; ``parent`` is the layer it is a subset of.
    subset: tuple[tuple[str, str | int], ...] = ()
    parent: str | None = None

    @property
    def qualified_table(self) -> str:
        return f"{SCHEMA}.{self.table}"

    def field(self, name: str) -> FieldSpec:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"layer {self.id!r} has no field {name!r}")

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @property
    def public_fields(self) -> tuple[FieldSpec, ...]:
        return tuple(f for f in self.fields if f.public and not f.personal)


@dataclass(frozen=True)
class CoverageSpec:
    """A raster coverage of the twin."""

    id: str
    title: str
    description: str
    table: str
    unit: str
    band_field: str = "year"


F = FieldSpec

ESTABLISHMENTS = LayerSpec(
    id="establishments",
    title="Establishments (inrichtingen)",
    description="Locations of establishments under environmental supervision, with their SBI activity, "
    "VNG environmental category, Activiteitenbesluit type, Brzo flag and visit-frequency class.",
    table="establishments",
    geometry_type="Point",
    key="establishment_id",
    label_field="name",
    fields=(
        F(
            "establishment_id",
            "text",
            "Identifier of the establishment in the VTH system",
            ("inrichting_id", "inrichtingnummer", "vestiging_id", "id", "identificatie"),
            required=True,
            fallback="vestigingsnummer",
        ),
        F(
            "name",
            "text",
            "Trade name (eerste handelsnaam)",
            ("naam", "handelsnaam", "eersteHandelsnaam", "bedrijfsnaam", "inrichting_naam"),
            required=True,
            personal=True,
        ),
        F(
            "kvk_number",
            "text",
            "KvK (Chamber of Commerce) number, 8 digits",
            ("kvk_nummer", "kvkNummer", "kvk", "kvknummer", "KvK-nummer"),
            personal=True,
        ),
        F(
            "vestigingsnummer",
            "text",
            "KvK branch number, 12 digits",
            ("vestigingsnummer", "vestigingsNummer"),
            personal=True,
        ),
        F(
            "sbi_code",
            "text",
            "Main SBI activity code (text, leading zero kept)",
            ("sbi", "sbi_code", "sbiCode", "sbi_activiteit", "SBI-activiteit", "hoofdactiviteit_sbi"),
            required=True,
        ),
        F("sbi_description", "text", "Description of the SBI activity",
          ("sbi_omschrijving", "activiteit", "sbiOmschrijving")),
        F("legal_form", "text", "Legal form (rechtsvorm)", ("rechtsvorm",)),
        F(
            "sole_proprietor",
            "bool",
            "True when the establishment is a sole proprietorship (eenmanszaak): "
            "its name and KvK number are personal data",
            ("eenmanszaak",),
        ),
        F(
            "natural_person_owner",
            "bool",
            "True when the owners are natural persons (eenmanszaak, vof, maatschap, cv: the legal forms listed in "
            "layers/data/valuemaps/kvk.yaml): the name and KvK number identify people",
            ("natuurlijk_persoon", "natuurlijke_persoon"),
        ),
        F("street", "text", "Street name", ("straat", "straatnaam", "openbare_ruimte_naam"), personal=True),
        F("house_number", "text", "House number with letter and addition", ("huisnummer",), personal=True),
        F("postcode", "text", "Postcode", ("postcode",)),
        F("city", "text", "Place name (woonplaats)", ("plaats", "woonplaats", "woonplaats_naam")),
        F("municipality_code", "text", "CBS municipality code (GM....)", ("gemeentecode", "gemeente_code", "gm_code")),
        F("activities", "text", "Environmental activities, semicolon separated", ("activiteiten",)),
        F(
            "environmental_category",
            "text",
            "VNG environmental category (1, 2, 3.1 ... 6)",
            ("milieucategorie", "milieu_categorie", "categorie"),
            enum=ENVIRONMENTAL_CATEGORIES,
        ),
        F(
            "activiteitenbesluit_type",
            "text",
            "Activiteitenbesluit type A, B or C",
            ("type_activiteitenbesluit", "ab_type", "type_inrichting", "activiteitenbesluit", "type_ab"),
            enum=("A", "B", "C"),
        ),
        F(
            "bal_regime",
            "text",
            "Omgevingswet (since 2024): the Bal regime of the milieubelastende activiteit: vergunningplichtig, "
            "meldingsplichtig or informatieplichtig (replaces the Activiteitenbesluit type)",
            ("bal", "regime_bal", "bal_plicht", "mba_regime", "kwalificatie", "kwalificatie_activiteit"),
            enum=BAL_REGIMES,
        ),
        F("brzo", "bool", "Falls under the Brzo (major-accident hazards)", ("brzo_inrichting", "is_brzo")),
        F(
            "visit_frequency_years",
            "int",
            "Visit-frequency class in years (1, 3, 5 or 10)",
            ("bezoekfrequentie", "bezoekfrequentie_jaren", "frequentieklasse"),
            enum=("1", "3", "5", "10"),
        ),
        F(
            "org_code",
            "text",
            "Code of the supervising organisation (omgevingsdienst)",
            ("organisatie", "omgevingsdienst", "bevoegd_gezag"),
        ),
        F("started_on", "date", "Start date of the establishment (aanvang)",
          ("aanvang", "datum_aanvang", "datumAanvang")),
        F(
            "ended_on",
            "date",
            "End date of the establishment (beeindiging); empty while it operates",
            ("datum_einde", "einddatum", "datum_opheffing", "beeindiging", "datum_beeindiging", "datumEinde"),
        ),
    ),
    time_field=None,
    style=StyleSpec(fill=(33, 102, 172, 220), radius_m=40.0, color_field="environmental_category"),
    min_zoom=6,
    max_zoom=22,
)

PERMITS = LayerSpec(
    id="permits",
    title="Permits and notifications (omgevingsvergunningen en meldingen)",
    description="Environmental permits and notifications of establishments: type, status, dates and "
    "NH3/NOx emissions where relevant.",
    table="permits",
    geometry_type="Geometry",
    key="permit_id",
    fields=(
        F(
            "permit_id",
            "text",
            "Identifier of the permit or notification (zaaknummer)",
            ("vergunning_id", "zaaknummer", "identificatie", "id"),
            required=True,
        ),
        F(
            "establishment_id",
            "text",
            "Establishment the permit belongs to",
            ("inrichting_id", "inrichtingnummer", "vestiging_id", "inrichting"),
            required=True,
        ),
        F(
            "permit_type",
            "text",
            "Kind of decision (soort toestemming)",
            ("soort", "soort_vergunning", "type", "toestemming"),
            enum=PERMIT_TYPES,
            required=True,
        ),
        F(
            "procedure",
            "text",
            "Type of grant (verlening, revisie, intrekking, wijziging)",
            ("type_verlening", "procedure"),
        ),
        F("activities", "text", "Activities covered", ("activiteiten",)),
        F("status", "text", "Status of the decision", ("status",), enum=PERMIT_STATUSES, required=True),
        F("applied_on", "date", "Date of application", ("datum_aanvraag", "aanvraagdatum")),
        F("decided_on", "date", "Date of decision", ("datum_besluit", "besluitdatum")),
        F(
            "valid_from",
            "date",
            "Date the decision takes effect",
            ("inwerkingtredingsdatum", "geldig_vanaf", "datum_inwerkingtreding"),
        ),
        F("valid_until", "date", "Date the decision expires", ("vervaldatum", "geldig_tot")),
        F(
            "nh3_kg_per_year",
            "float",
            "Permitted ammonia emission",
            ("nh3_emissie", "emissie_nh3", "nh3_kg_jaar"),
            unit="kg NH3/yr",
        ),
        F(
            "nox_kg_per_year",
            "float",
            "Permitted nitrogen-oxide emission",
            ("nox_emissie", "emissie_nox", "nox_kg_jaar"),
            unit="kg NOx/yr",
        ),
        F("org_code", "text", "Competent organisation", ("organisatie", "bevoegd_gezag")),
    ),
    time_field="decided_on",
    style=StyleSpec(fill=(120, 80, 160, 200), radius_m=30.0),
    min_zoom=8,
    depends_on=("establishments",),
)

INSPECTIONS = LayerSpec(
    id="inspections",
    title="Inspections (controles)",
    description="Inspection visits and their findings: result, LHS behaviour (gedrag) and consequence "
    "(gevolg), the LHS cell, the intervention and follow-up. Restricted: personal data under the AVG.",
    table="inspections",
    geometry_type="Point",
    key="inspection_id",
    access="restricted",
    fields=(
        F(
            "inspection_id",
            "text",
            "Identifier of the inspection (controle)",
            ("controle_id", "identificatie", "controlenummer", "id"),
            required=True,
        ),
        F(
            "establishment_id",
            "text",
            "Establishment inspected",
            ("inrichting_id", "inrichtingnummer", "vestiging_id", "inrichting"),
            required=True,
        ),
        F(
            "inspected_on",
            "date",
            "Date of the inspection",
            ("datum_controle", "controledatum", "datum"),
            required=True,
        ),
        F(
            "kind",
            "text",
            "Kind of inspection",
            ("type", "soort_controle", "type_controle"),
            enum=INSPECTION_KINDS,
            required=True,
        ),
        F(
            "result",
            "text",
            "Finding (bevinding resultaat)",
            ("resultaat", "bevinding"),
            enum=INSPECTION_RESULTS,
            required=True,
        ),
        F(
            "gedrag",
            "text",
            "LHS behaviour of the offender: A well-meaning ... D notorious",
            ("gedrag",),
            enum=LHS_GEDRAG,
        ),
        F(
            "gevolg",
            "text",
            "LHS consequence: 1 negligible ... 4 considerable/irreversible",
            ("gevolg",),
            enum=LHS_GEVOLG,
        ),
        F(
            "lhs_cell",
            "text",
            "LHS matrix cell (gedrag + gevolg, A1 lightest ... D4 heaviest)",
            ("lhs_cel", "lhs", "handhavingsstrategie", "interventiepositionering"),
            enum=LHS_CELLS,
        ),
        F(
            "violation",
            "text",
            "Nature of the violation (aard overtreding)",
            ("aard", "overtreding", "aard_overtreding"),
        ),
        F(
            "intervention",
            "text",
            "Enforcement instrument chosen",
            ("interventie", "instrument", "handhavingsmaatregel"),
            enum=INTERVENTIONS,
        ),
        F(
            "repair_deadline",
            "date",
            "Deadline set for repairing a violation (hersteltermijn, begunstigingstermijn); not in CIM-VTH-Flo",
            ("hersteltermijn", "uiterste_hersteldatum", "begunstigingstermijn", "termijn_herstel"),
        ),
        F(
            "repaired_on",
            "date",
            "Date the violation was found to be ended (CIM-VTH-Flo OVERTREDING.Hersteldatum); empty while open",
            ("hersteldatum", "datum_herstel", "herstel_datum"),
        ),
        F(
            "follow_up_status",
            "text",
            "Status of the enforcement measure",
            ("status_maatregel", "status_handhaving", "opvolging"),
            enum=FOLLOW_UP_STATUSES,
        ),
        F(
            "inspector",
            "text",
            "Inspector (personal data)",
            ("toezichthouder", "inspecteur"),
            personal=True,
            public=False,
        ),
        F("org_code", "text", "Supervising organisation", ("organisatie", "omgevingsdienst")),
    ),
    time_field="inspected_on",
    style=StyleSpec(fill=(230, 85, 13, 220), radius_m=30.0, color_field="result"),
    min_zoom=8,
    depends_on=("establishments",),
)

NATURA2000 = LayerSpec(
    id="natura2000-habitats",
    title="Natura 2000 habitats",
    description="Habitat-type polygons in Natura 2000 areas with the critical deposition value (KDW, "
    "mol N/ha/yr): the lowest KDW of the habitat types present in the polygon (a BIJ12 map's complex parts "
    "Habtype1..n); all parts are kept in habitat_types.",
    table="natura2000_habitats",
    geometry_type="MultiPolygon",
    key="habitat_id",
    label_field="area_name",
    fields=(
        F(
            "habitat_id",
            "text",
            "Identifier of the habitat polygon",
            ("id", "identificatie", "objectid", "fid_habitat", "ElmID"),
            required=True,
        ),
        # A BIJ12 habitat type map has no area name: the natura2000-areas layer names the area then.
        F("area_name", "text", "Natura 2000 area name", ("naamN2K", "naam_n2k", "gebied", "natura2000_naam")),
        F("area_number", "int", "Natura 2000 area number", ("nr", "gebiedsnummer", "n2k_nummer")),
        F("protection", "text", "Protection status (VR, HR, VR+HR)", ("beschermin", "bescherming")),
        F(
            "habitat_type",
            "text",
            "Habitat type code (e.g. H4030) that sets the KDW: of the types present, the one with the lowest "
            "KDW (else the largest part)",
            ("habtype1", "Habtype1", "habitattype"),
            required=True,
        ),
        F("habitat_share", "float", "Share of the polygon covered by that habitat type (0-100)", ("perc1", "Perc1")),
        F("quality", "text", "Quality of that habitat type (G good, M moderate, X unknown)",
          ("kwal1", "Kwal1", "kwaliteit")),
        F("kdw", "float", "Critical deposition value (KDW): the lowest KDW of the habitat types present; empty "
          "when none of them has a known KDW", ("kdw_mol",), unit="mol N/ha/yr"),
        F("habitat_types", "text", "All habitat types of the polygon (BIJ12 Habtype1..n with Perc and Kwal), "
          "e.g. 'H4030 70% G; H3130 30% M'; search areas (ZGH...) are marked '(search area)'",
          ("habitattypen",)),
    ),
    style=StyleSpec(fill=(26, 152, 80, 110), line=(0, 104, 55, 220), color_field="kdw"),
    min_zoom=5,
)

HOUSING = LayerSpec(
    id="housing-sites",
    title="Planned housing sites (woningbouwlocaties)",
    description="Planned housing sites with the number of dwellings, planning phase and intended year.",
    table="housing_sites",
    geometry_type="MultiPolygon",
    key="site_id",
    label_field="name",
    fields=(
        F(
            "site_id",
            "text",
            "Identifier of the housing site",
            ("locatie_id", "id", "identificatie", "plan_id"),
            required=True,
        ),
        F("name", "text", "Name of the site", ("naam", "locatienaam", "plannaam"), required=True),
        F("municipality_code", "text", "CBS municipality code", ("gemeentecode", "gm_code")),
        F("municipality_name", "text", "Municipality name", ("gemeente", "gemeentenaam")),
        F(
            "planned_dwellings",
            "int",
            "Number of planned dwellings",
            ("aantal_woningen", "woningen", "geplande_woningen"),
            required=True,
        ),
        F("phase", "text", "Planning phase", ("fase", "planfase"), enum=HOUSING_PHASES),
        F("planned_year", "int", "Intended year of delivery", ("jaar", "opleverjaar", "jaar_oplevering")),
    ),
    time_field=None,
    style=StyleSpec(fill=(253, 174, 97, 160), line=(180, 90, 20, 255), color_field="verdict"),
    min_zoom=5,
)

BUILDINGS = LayerSpec(
    id="buildings",
    title="Buildings (BAG panden)",
    description="Building footprints from the BAG with construction year, use and height (for 3D).",
    table="buildings",
    geometry_type="Polygon",
    key="building_id",
    fields=(
        F(
            "building_id",
            "text",
            "BAG pand identificatie (16 digits)",
            ("identificatie", "pand_id", "bag_id"),
            required=True,
            strip_prefixes=("NL.IMBAG.Pand.",),
        ),
        F(
            "construction_year",
            "int",
            "Year of construction",
            ("bouwjaar", "oorspronkelijkBouwjaar", "oorspronkelijk_bouwjaar"),
        ),
        F("status", "text", "BAG status", ("status", "pandstatus")),
        F("use", "text", "Use (gebruiksdoel)", ("gebruiksdoel",)),
        F("height_m", "float", "Height above ground", ("hoogte", "height", "b3_hoogte"), unit="m"),
        F("roof_type", "text", "Roof type from the 3D BAG (b3_dak_type: slanted, horizontal, multiple horizontal, "
          "...)", ("b3_dak_type", "dak_type", "daktype")),
        F("volume_m3", "float", "Volume from the 3D BAG (b3_volume_lod12/13/22 of the LoD read)",
          ("b3_volume_lod12", "b3_volume_lod13", "b3_volume_lod22", "volume"), unit="m3"),
    ),
    style=StyleSpec(fill=(200, 200, 210, 255), extrude_field="height_m"),
    min_zoom=13,
)

ADDRESSES = LayerSpec(
    id="addresses",
    title="Addresses (BAG verblijfsobjecten)",
    description="BAG addresses: each verblijfsobject (the unit of use inside a building) with its main address "
    "(nummeraanduiding): street, house number, letter and addition, postcode and place. Used to check that an "
    "establishment lies at its address.",
    table="addresses",
    geometry_type="Point",
    key="address_id",
    label_field="street",
    fields=(
        F(
            "address_id",
            "text",
            "BAG verblijfsobject identificatie (16 digits)",
            ("identificatie", "verblijfsobject_id", "verblijfsobjectidentificatie", "vbo_id", "bag_id"),
            required=True,
        ),
        F(
            "street",
            "text",
            "Street name (openbare ruimte)",
            ("openbareruimtenaam", "openbare_ruimte_naam", "openbare_ruimte", "openbareruimte", "straat",
             "straatnaam"),
        ),
        F("house_number", "int", "House number (huisnummer)", ("huisnummer",), required=True),
        F("house_letter", "text", "House letter (huisletter), one letter", ("huisletter",)),
        F(
            "house_number_addition",
            "text",
            "House number addition (huisnummertoevoeging)",
            ("huisnummertoevoeging", "toevoeging", "huisnummer_toevoeging"),
        ),
        F("postcode", "text", "Postcode (1234AB)", ("postcode",)),
        F("city", "text", "Place name (woonplaats)", ("woonplaatsnaam", "woonplaats_naam", "woonplaats", "plaats")),
        F("municipality_code", "text", "CBS municipality code (GM....)", ("gemeentecode", "gemeente_code", "gm_code")),
    ),
    style=StyleSpec(fill=(90, 90, 110, 200), line=(255, 255, 255, 200), radius_m=4.0),
    min_zoom=14,
)

MUNICIPALITIES = LayerSpec(
    id="municipalities",
    title="Municipalities (CBS gemeenten 2023)",
    description="Municipal boundaries (Bron: CBS, Kadaster; CC-BY 4.0), for area summaries and the map.",
    table="municipalities",
    geometry_type="MultiPolygon",
    key="code",
    label_field="name",
    fields=(
        F("code", "text", "CBS municipality code (GM....)", ("statcode", "gemeentecode", "gm_code"), required=True),
        F("name", "text", "Municipality name", ("statnaam", "gemeentenaam", "naam"), required=True),
        F("province_name", "text", "Province name", ("provincie", "provincienaam")),
    ),
    style=StyleSpec(fill=(0, 0, 0, 0), line=(90, 90, 90, 200), line_width_m=40.0),
    min_zoom=0,
)

DEPOSITION_HEXAGONS = LayerSpec(
    id="deposition-hexagons",
    title="Nitrogen deposition on habitat hexagons",
    description="Derived from the deposition raster on the AERIUS 1-hectare hexagon grid over Natura 2000 "
    "habitats (resolution '1ha', keyed by receptor id) and a coarser national grid ('national'): mean "
    "deposition, lowest KDW inside, exceedance and the overload flags.",
    table="deposition_hexagons",
    geometry_type="Polygon",
    key="hexagon_id",
    fields=(
        F("hexagon_id", "text", "Resolution, receptor id and year, e.g. 1ha-3167281-2023", required=True),
        F("resolution", "text", "1ha (AERIUS receptor grid) or national (coarse grid for the map)", required=True),
        F("receptor_id", "int", "AERIUS receptor id (1ha) or coarse cell id", required=True),
        F("year", "int", "Year or scenario band of the deposition raster", required=True),
        F("deposition", "float", "Area-weighted mean total N deposition", unit="mol N/ha/yr"),
        F("lowest_kdw", "float", "Lowest KDW of the habitats inside the hexagon", unit="mol N/ha/yr"),
        F("exceedance", "float", "Deposition minus lowest KDW", unit="mol N/ha/yr"),
        F("overloaded", "bool", "Deposition above the lowest KDW"),
        F("approaching", "bool", "Deposition above KDW - 70 (approaching overload)"),
    ),
    time_field=None,
    style=StyleSpec(fill=(253, 231, 37, 200), extrude_field="deposition", color_field="exceedance"),
    min_zoom=5,
)

NATURA2000_AREAS = LayerSpec(
    id="natura2000-areas",
    title="Natura 2000 areas",
    description="Boundaries of the Natura 2000 areas (PDOK/RVO 'Natura 2000'): name, number, status and "
    "protection (VR Birds Directive, HR Habitats Directive, VR+HR), with the EU site codes.",
    table="natura2000_areas",
    geometry_type="MultiPolygon",
    key="area_id",
    label_field="name",
    fields=(
        # PDOK publishes some areas as several features (one per designation), so the key is number + protection.
        F("area_id", "text", "Identifier: the area number and its protection, e.g. 57-VR+HR (derived when the "
          "file has none)", ("identificatie", "id", "objectid")),
        F("name", "text", "Natura 2000 area name", ("naamN2K", "naam_n2k", "naam", "gebied"), required=True),
        F("number", "int", "Natura 2000 area number", ("nr", "gebiedsnummer", "n2k_nummer", "nummer"),
          required=True),
        F("status", "text", "Designation status (e.g. definitief, ontwerp)", ("status",)),
        F("protection", "text", "Protection: VR (Birds Directive), HR (Habitats Directive), VR+HR",
          ("beschermin", "bescherming", "beschermingsstatus")),
        F("sitecode_h", "text", "EU site code under the Habitats Directive (NL...)", ("sitecodeH",)),
        F("sitecode_v", "text", "EU site code under the Birds Directive (NL...)", ("sitecodeV",)),
    ),
    style=StyleSpec(fill=(0, 0, 0, 0), line=(0, 104, 55, 230), line_width_m=30.0),
    min_zoom=0,
)

LAYERS: dict[str, LayerSpec] = {
    spec.id: spec
    for spec in (
        MUNICIPALITIES,
        ESTABLISHMENTS,
        PERMITS,
        INSPECTIONS,
        NATURA2000,
        NATURA2000_AREAS,
        HOUSING,
        BUILDINGS,
        ADDRESSES,
        DEPOSITION_HEXAGONS,
    )
}

NITROGEN_DEPOSITION = CoverageSpec(
    id="nitrogen-deposition",
    title="Total nitrogen deposition",
    description="Total N deposition (NHx + NOy) in mol N per hectare per year, one raster per year or scenario.",
    table="nitrogen_deposition",
    unit="mol N/ha/yr",
)
COVERAGES: dict[str, CoverageSpec] = {NITROGEN_DEPOSITION.id: NITROGEN_DEPOSITION}


# --- Virtual collections -----------------------------------------------------------------------------------
# deposition-hexagons holds each hexagon once per year and resolution, so a GIS opening it unfiltered draws
# stacked polygons. Each (resolution, year) present is also a collection of its own, one feature per hexagon:
# deposition-hexagons-2025 (the 1 ha AERIUS receptor grid) and deposition-hexagons-national-2025 (the coarse
# national grid). Generated from the years in the table (api.subsets), filtered in SQL (api.columns.table_sql).
HEXAGON_SUBSET_RE = re.compile(r"^deposition-hexagons-(?:(national)-)?(\d{4})$")
HEXAGON_RESOLUTIONS = {"1ha": "", "national": "national-"}


def hexagon_layer_id(resolution: str, year: int) -> str:
    return f"{DEPOSITION_HEXAGONS.id}-{HEXAGON_RESOLUTIONS[resolution]}{year}"


def subset_layer(layer_id: str) -> LayerSpec | None:
    """The virtual collection an id names (``deposition-hexagons-2025``, ``deposition-hexagons-national-2025``),
    or None; whether its year is present is for the caller to check."""
    m = HEXAGON_SUBSET_RE.match(layer_id)
    if m is None:
        return None
    resolution, year = ("national" if m.group(1) else "1ha"), int(m.group(2))
    grid = "the coarse national grid" if resolution == "national" else "the AERIUS 1-hectare receptor grid"
    return replace(
        DEPOSITION_HEXAGONS, id=layer_id,
        title=f"Nitrogen deposition on habitat hexagons, {year}" + (" (national grid)" if m.group(1) else ""),
        description=f"The deposition hexagons of {year} on {grid}: one feature per hexagon (the multi-year "
        f"layer {DEPOSITION_HEXAGONS.id} holds each hexagon once per year and resolution).",
        subset=(("resolution", resolution), ("year", year)), parent=DEPOSITION_HEXAGONS.id,
    )


def get_layer(layer_id: str) -> LayerSpec:
    """The spec of a layer by its collection id; KeyError names the known ids."""
    try:
        return LAYERS[layer_id]
    except KeyError:
        raise KeyError(f"unknown layer {layer_id!r}; known layers: {', '.join(LAYERS)}") from None
