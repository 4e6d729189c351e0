"""Fixed reference tables for the demo-data generator: towns, industrial clusters, livestock regions,
Natura 2000 areas, the SBI catalogue and the word lists that names and addresses are made of.

Everything here is plausible, not authoritative: town positions and populations are rounded, the SBI
catalogue pairs each activity with the VNG category and Activiteitenbesluit type it usually has, and
all names of people and companies are invented.
"""

from __future__ import annotations

from dataclasses import dataclass

REFERENCE_DATE = "2026-11-01"
DEPOSITION_YEARS = (2023, 2024, 2025)
NL_POPULATION = 17_900_000


@dataclass(frozen=True)
class Town:
    """A town with its centre in RD New and the population of its municipality (rounded)."""

    name: str
    x: float
    y: float
    population: int


# The larger towns of the Netherlands: centre (RD New, metres) and municipal population, rounded.
TOWNS: tuple[Town, ...] = tuple(
    Town(n, x, y, p)
    for n, x, y, p in (
        ("Amsterdam", 121500, 487500, 918000), ("Rotterdam", 92500, 437500, 656000),
        ("Den Haag", 81000, 455500, 552000), ("Utrecht", 136500, 456000, 367000),
        ("Eindhoven", 161500, 383500, 238000), ("Groningen", 233500, 582000, 235000),
        ("Tilburg", 133500, 397500, 224000), ("Almere", 143000, 486000, 218000),
        ("Breda", 112500, 400500, 185000), ("Nijmegen", 187500, 428500, 179000),
        ("Apeldoorn", 194500, 469000, 166000), ("Arnhem", 190500, 444500, 165000),
        ("Haarlem", 104000, 488500, 162000), ("Hoofddorp", 104500, 480500, 160000),
        ("Enschede", 258500, 471500, 160000), ("Amersfoort", 155500, 463500, 158000),
        ("Zaandam", 116500, 495000, 157000), ("'s-Hertogenbosch", 149500, 411500, 157000),
        ("Zwolle", 203000, 502500, 130000), ("Zoetermeer", 92500, 451000, 126000),
        ("Leiden", 93500, 464000, 126000), ("Leeuwarden", 182500, 579500, 125000),
        ("Maastricht", 176500, 317500, 122000), ("Dordrecht", 105500, 424500, 120000),
        ("Ede", 174500, 448000, 120000), ("Alphen aan den Rijn", 105000, 459500, 113000),
        ("Naaldwijk", 73500, 444500, 113000), ("Alkmaar", 111500, 516500, 110000),
        ("Emmen", 256500, 532500, 108000), ("Delft", 84500, 447000, 104000),
        ("Venlo", 209500, 375500, 102000), ("Deventer", 208500, 473500, 101000),
        ("Sittard", 188000, 336000, 91000), ("Helmond", 174000, 386500, 93000),
        ("Oss", 164000, 421500, 93000), ("Amstelveen", 118500, 478500, 92000),
        ("Hilversum", 140500, 471000, 92000), ("Sneek", 168000, 565500, 92000),
        ("Heerlen", 196500, 321500, 87000), ("Spijkenisse", 81000, 428500, 86000),
        ("Veghel", 164500, 404000, 83000), ("Hengelo", 250500, 476500, 81000),
        ("Purmerend", 126500, 501500, 93000), ("Schiedam", 87000, 437000, 80000),
        ("Lelystad", 160500, 502500, 80000), ("Roosendaal", 93000, 392500, 78000),
        ("Leidschendam", 85500, 455500, 77000), ("Almelo", 238500, 489000, 73000),
        ("Gouda", 107500, 447000, 75000), ("Hoorn", 133000, 518000, 74000),
        ("Vlaardingen", 83500, 436000, 75000), ("Assen", 233000, 556500, 69000),
        ("Capelle aan den IJssel", 98500, 438000, 67000), ("IJmuiden", 101500, 497500, 69000),
        ("Bergen op Zoom", 81500, 390500, 68000), ("Veenendaal", 167500, 449500, 67000),
        ("Katwijk", 89000, 467500, 67000), ("Zeist", 144000, 455000, 66000),
        ("Nieuwegein", 134500, 448500, 64000), ("Berkel en Rodenrijs", 91500, 446500, 64000),
        ("Barneveld", 172000, 464000, 60000), ("Den Helder", 113000, 552500, 56000),
        ("Hardenberg", 238500, 512000, 61000), ("Roermond", 196500, 355000, 59000),
        ("Doetinchem", 218000, 443500, 59000), ("Bussum", 140000, 477000, 59000),
        ("Heerhugowaard", 114500, 522500, 88000), ("Oosterhout", 118500, 408500, 57000),
        ("Hoogeveen", 233000, 528000, 56000), ("Terneuzen", 47500, 369500, 54000),
        ("Kampen", 189500, 506500, 54000), ("Pijnacker", 88500, 448500, 56000),
        ("Drachten", 200500, 573000, 56000), ("Rijswijk", 82000, 450500, 57000),
        ("Weert", 175500, 360500, 50000), ("Middelburg", 31000, 391500, 49000),
        ("Vlissingen", 30000, 385500, 45000), ("Goes", 53000, 389500, 38000),
        ("Harderwijk", 171500, 484000, 48000), ("Heerenveen", 189500, 553500, 51000),
        ("Zutphen", 211500, 460500, 48000), ("Woerden", 121000, 455000, 53000),
        ("Tiel", 157000, 433500, 42000), ("Gorinchem", 126500, 428000, 38000),
        ("Culemborg", 142500, 440000, 29000), ("Wageningen", 173500, 442000, 40000),
        ("Nijkerk", 163500, 471500, 44000), ("Meppel", 208500, 522500, 34000),
        ("Winterswijk", 241500, 442500, 29000), ("Venray", 192500, 393500, 44000),
        ("Uden", 172000, 409500, 61000), ("Deurne", 180500, 384500, 33000),
        ("Waalwijk", 133500, 412000, 49000), ("Etten-Leur", 104000, 399500, 45000),
        ("Emmeloord", 180500, 524500, 48000), ("Veendam", 256500, 569000, 28000),
        ("Stadskanaal", 262500, 560500, 31000), ("Oldenzaal", 258500, 481500, 32000),
        ("Rijssen", 227500, 478500, 38000), ("Nijverdal", 230000, 490500, 36000),
        ("Gemert", 175500, 395000, 31000), ("Horst", 201500, 386500, 43000),
        ("Panningen", 198000, 372500, 44000), ("Kerkrade", 203000, 321000, 45000),
        ("Harlingen", 157500, 576500, 16000), ("Dokkum", 197000, 594500, 45000),
        ("Epe", 199500, 485000, 33000), ("Ermelo", 171000, 478000, 27000),
        ("Putten", 168000, 474000, 24000), ("Velp", 195000, 445000, 44000),
        ("Oosterbeek", 184500, 446000, 32000), ("Borculo", 236500, 455500, 44000),
        ("Aalten", 236000, 437500, 27000), ("Ulft", 222500, 433000, 40000),
        ("Lichtenvoorde", 234000, 446000, 30000), ("Hengelo (Gld)", 220000, 452500, 36000),
        ("Didam", 206500, 439000, 36000), ("Lochem", 222000, 466500, 34000),
        ("Twello", 203000, 470000, 25000), ("Dronten", 182000, 508000, 42000),
        ("Zeewolde", 161500, 484500, 23000),
    )
)

# Harbour and chemical clusters where heavy industry and most Brzo establishments are: name, x, y,
# spread (m), relative weight.
INDUSTRIAL_CLUSTERS: tuple[tuple[str, float, float, float, float], ...] = (
    ("Botlek-Europoort", 72000, 437500, 4500, 5.0),
    ("Westpoort", 114000, 490500, 2000, 2.0),
    ("IJmond", 101500, 499500, 1500, 1.0),
    ("Moerdijk", 100500, 411500, 2000, 2.0),
    ("Chemelot", 185000, 331500, 1500, 2.0),
    ("Sloegebied", 38500, 387500, 1500, 1.0),
    ("Kanaalzone Terneuzen", 46500, 368000, 2000, 1.0),
    ("Eemsdelta", 259000, 594000, 2000, 1.5),
    ("Dordrecht-Zwijndrecht", 102000, 424000, 1500, 1.0),
    ("Emmen", 258000, 531000, 1500, 0.5),
    ("Geertruidenberg", 125500, 413500, 1000, 0.3),
)

# Livestock intensity: a rural background of 1 plus Gaussian concentrations (x, y, sigma, amplitude).
LIVESTOCK_BACKGROUND = 0.35
LIVESTOCK_CONCENTRATIONS: tuple[tuple[str, float, float, float, float], ...] = (
    ("Gelderse Vallei", 168000, 455000, 9000, 3.2),
    ("De Peel", 178000, 388000, 12000, 3.0),
    ("Noord-Limburg", 197000, 392000, 9000, 2.0),
    ("Achterhoek", 228000, 445000, 15000, 1.9),
    ("Friesland", 180000, 565000, 24000, 1.5),
    ("Twente-Salland", 225000, 482000, 17000, 1.0),
    ("Oost-Brabant", 158000, 405000, 13000, 1.0),
    ("Groene Hart", 115000, 450000, 12000, 0.5),
    ("Drenthe", 235000, 540000, 20000, 0.4),
)

# The named livestock regions as municipalities (CBS names), for checks and summaries.
LIVESTOCK_REGIONS: dict[str, tuple[str, ...]] = {
    "Gelderse Vallei": ("Barneveld", "Ede", "Nijkerk", "Scherpenzeel", "Renswoude", "Woudenberg",
                        "Leusden", "Putten"),
    "De Peel": ("Deurne", "Gemert-Bakel", "Asten", "Someren", "Laarbeek", "Boekel", "Venray",
                "Horst aan de Maas", "Peel en Maas", "Helmond"),
    "Achterhoek": ("Aalten", "Berkelland", "Bronckhorst", "Doetinchem", "Montferland", "Oost Gelre",
                   "Oude IJsselstreek", "Winterswijk"),
}
LIVESTOCK_PROVINCES = ("Fryslân",)

# Greenhouse horticulture (glastuinbouw) concentrations: x, y, sigma, amplitude.
GREENHOUSE_CONCENTRATIONS: tuple[tuple[float, float, float, float], ...] = (
    (75000, 445000, 5000, 6.0),
    (93000, 446000, 4000, 3.0),
    (113000, 476000, 3500, 2.0),
    (205000, 383000, 8000, 2.0),
    (258000, 525000, 5000, 1.0),
)
GREENHOUSE_BACKGROUND = 0.15

# The small scale covers one region: municipalities whose representative point lies in this box
# (Gelderse Vallei, Veluwe, Amersfoort-Ede-Apeldoorn-Arnhem).
SMALL_REGION_BOX = (150000.0, 435000.0, 210000.0, 490000.0)

# Fictitious omgevingsdienst code per province; larger provinces are split north/south (NZ),
# west/east (WO) or by compass quadrant (NOZW) around the province centroid, e.g. "ODGLD-N".
PROVINCE_OD: dict[str, tuple[str, str]] = {
    "Groningen": ("ODGRO", ""), "Fryslân": ("ODFRL", "NZ"), "Drenthe": ("ODDRE", ""),
    "Overijssel": ("ODOVE", "WO"), "Flevoland": ("ODFLE", ""), "Gelderland": ("ODGLD", "NOZW"),
    "Utrecht": ("ODUTR", ""), "Noord-Holland": ("ODNHO", "NOZW"), "Zuid-Holland": ("ODZHO", "NOZW"),
    "Zeeland": ("ODZEE", ""), "Noord-Brabant": ("ODNBR", "NOZW"), "Limburg": ("ODLIM", "NZ"),
}

# Postcode ranges (4 digits) per province, roughly as PostNL assigns them.
PROVINCE_POSTCODES: dict[str, tuple[int, int]] = {
    "Noord-Holland": (1000, 1999), "Zuid-Holland": (2000, 3299), "Utrecht": (3400, 3999),
    "Zeeland": (4300, 4599), "Noord-Brabant": (4600, 5799), "Limburg": (5800, 6499),
    "Gelderland": (6500, 7399), "Overijssel": (7400, 8099), "Drenthe": (7800, 7999),
    "Flevoland": (8200, 8399), "Fryslân": (8400, 9299), "Groningen": (9300, 9999),
}
POSTCODE_LETTERS = "ABCDEGHJKLMNPRSTVWXZ"


# KDW (critical deposition value, mol N/ha/yr) of the habitat types used: the verified values of layers/data/kdw.csv
# (Van Dobben et al. 2012). "H0000" marks a polygon without a habitat type, as in the BIJ12 map.
KDW: dict[str, float | None] = {
    "H7110A": 500.0, "H3110": 429.0, "H3130": 571.0, "H2130B": 714.0, "H4010A": 1214.0,
    "H4030": 1071.0, "H9190": 1071.0, "H6410": 1071.0, "H9160A": 1429.0, "H91E0C": 1857.0,
    "H0000": None,
}


@dataclass(frozen=True)
class NatureArea:
    """A Natura 2000 area: real name, number and protection, an approximate outline (ellipse lobes
    around real positions in RD New) and the habitat types that occur in it with their weights."""

    name: str
    number: int
    protection: str
    lobes: tuple[tuple[float, float, float, float, float], ...]  # x, y, semi-axis a, b (m), angle (deg)
    habitats: tuple[tuple[str, float], ...]
    cell_ha: float = 60.0


NATURA2000_AREAS: tuple[NatureArea, ...] = (
    NatureArea("Veluwe", 57, "VR+HR",
               ((188000, 467000, 11500, 20000, 8), (180500, 452500, 5000, 5500, 0),
                (196000, 482000, 5500, 9000, -20)),
               (("H4030", 4), ("H9190", 4), ("H4010A", 1), ("H3130", 0.5), ("H3110", 0.3), ("H0000", 1)),
               cell_ha=250.0),
    NatureArea("Groote Peel", 137, "VR+HR", ((181500, 371500, 2000, 2600, 20),),
               (("H7110A", 3), ("H4010A", 2), ("H4030", 1), ("H0000", 0.5))),
    NatureArea("Deurnsche Peel & Mariapeel", 138, "VR+HR",
               ((187500, 382000, 2200, 2600, 30), (193500, 385500, 1800, 2800, 20)),
               (("H7110A", 3), ("H4010A", 2), ("H4030", 1), ("H0000", 0.5))),
    NatureArea("Dwingelderveld", 30, "HR", ((223500, 538500, 3500, 2700, 10),),
               (("H4010A", 3), ("H4030", 3), ("H3130", 1), ("H3110", 0.5), ("H9190", 1.5), ("H0000", 0.5))),
    NatureArea("Sallandse Heuvelrug", 44, "VR+HR", ((230000, 486000, 2800, 4500, 5),),
               (("H4030", 5), ("H4010A", 1.5), ("H9190", 1), ("H0000", 0.5))),
    NatureArea("Kennemerland-Zuid", 87, "HR", ((101000, 490000, 2200, 5500, 15),),
               (("H2130B", 5), ("H9160A", 0.5), ("H0000", 1))),
    NatureArea("Meijendel & Berkheide", 97, "HR", ((85500, 463500, 1500, 5000, -38),),
               (("H2130B", 5), ("H0000", 1))),
    NatureArea("Biesbosch", 112, "VR+HR", ((114000, 417500, 6000, 3500, 15),),
               (("H91E0C", 4), ("H6410", 0.5), ("H0000", 2)), cell_ha=120.0),
    NatureArea("Drents-Friese Wold & Leggelderveld", 27, "HR", ((213000, 551000, 5000, 3800, 10),),
               (("H4030", 3), ("H4010A", 2), ("H9190", 2), ("H3110", 0.5), ("H3130", 0.5), ("H0000", 1)),
               cell_ha=100.0),
    NatureArea("Strabrechtse Heide & Beuven", 139, "VR+HR", ((169000, 377500, 3000, 2300, 0),),
               (("H4030", 3), ("H4010A", 2), ("H3130", 1), ("H3110", 0.5), ("H0000", 0.5))),
    NatureArea("Kampina & Oisterwijkse Vennen", 133, "VR+HR",
               ((147000, 396500, 2600, 1800, 10), (141500, 396000, 1500, 1200, 0)),
               (("H3110", 1), ("H3130", 1.5), ("H4010A", 2), ("H4030", 2), ("H6410", 1), ("H9190", 1),
                ("H0000", 0.5))),
    NatureArea("Maasduinen", 145, "HR", ((205000, 401500, 1800, 7500, -5),),
               (("H4030", 3), ("H3130", 1), ("H9190", 2), ("H0000", 1))),
)


@dataclass(frozen=True)
class SbiClass:
    """One SBI activity as it shows up in VTH registrations: code (text, leading zero), description,
    sector, share of all establishments, the VNG categories it takes (with weights), how often it is a
    type C (permit-requiring) establishment, the chance it falls under the Brzo, and its emissions."""

    code: str
    description: str
    sector: str
    weight: float
    categories: tuple[tuple[str, float], ...]
    type_c: float = 0.0
    type_a: float = 0.0
    brzo: float = 0.0
    nh3_kg: float = 0.0  # median yearly NH3 emission (kg), 0 = none
    nox_kg: float = 0.0  # median yearly NOx emission (kg), 0 = none


SBI_CATALOGUE: tuple[SbiClass, ...] = (
    # livestock (rural)
    SbiClass("0141", "Fokken en houden van melkvee", "livestock", 0.085, (("3.2", 1),), type_c=0.2, nh3_kg=1800),
    SbiClass("0142", "Fokken en houden van overige runderen", "livestock", 0.015, (("3.2", 1),), type_c=0.3,
             nh3_kg=1500),
    SbiClass("0145", "Fokken en houden van schapen en geiten", "livestock", 0.012, (("3.1", 1), ("3.2", 2)),
             type_c=0.15, nh3_kg=700),
    SbiClass("0146", "Fokken en houden van varkens", "livestock", 0.035, (("3.2", 1), ("4.1", 3)), type_c=0.55,
             nh3_kg=3500),
    SbiClass("01471", "Fokken en houden van leghennen", "livestock", 0.015, (("4.1", 1),), type_c=0.55,
             nh3_kg=3000),
    SbiClass("0147", "Fokken en houden van pluimvee", "livestock", 0.018, (("4.1", 1),), type_c=0.5, nh3_kg=2600),
    # greenhouse horticulture
    SbiClass("0113", "Teelt van groenten en wortel- en knolgewassen", "greenhouse", 0.025,
             (("2", 2), ("3.1", 1)), type_c=0.05, nox_kg=1500),
    SbiClass("0119", "Teelt van bloemen en overige eenjarige gewassen", "greenhouse", 0.015,
             (("2", 2), ("3.1", 1)), type_c=0.05, nox_kg=1200),
    SbiClass("0161", "Dienstverlening voor de teelt van gewassen (loonwerk)", "rural_service", 0.01,
             (("3.1", 1),)),
    # industry (industrial estates at the edge of towns)
    SbiClass("1011", "Slachterijen (geen pluimveeslachterijen)", "industry", 0.004, (("4.2", 2), ("5.1", 1)),
             type_c=0.8, nh3_kg=400, nox_kg=3000),
    SbiClass("1012", "Pluimveeslachterijen", "industry", 0.002, (("4.2", 2), ("5.1", 1)), type_c=0.8,
             nh3_kg=300, nox_kg=2500),
    SbiClass("1051", "Zuivelfabrieken", "industry", 0.003, (("4.1", 1), ("4.2", 2)), type_c=0.8, nh3_kg=200,
             nox_kg=15000),
    SbiClass("1091", "Vervaardiging van diervoeders voor landbouwhuisdieren", "industry", 0.004,
             (("4.2", 2), ("5.1", 1)), type_c=0.7, nh3_kg=300, nox_kg=6000),
    SbiClass("1071", "Vervaardiging van brood en vers banketbakkerswerk", "industry", 0.012,
             (("2", 3), ("3.2", 1)), type_c=0.05),
    SbiClass("1610", "Primaire houtbewerking en verduurzamen van hout", "industry", 0.008, (("3.2", 1),),
             type_c=0.3, nox_kg=800),
    SbiClass("2222", "Vervaardiging van kunststof verpakkingsmiddelen", "industry", 0.006,
             (("3.2", 2), ("4.1", 1)), type_c=0.3, nox_kg=600),
    SbiClass("2229", "Vervaardiging van overige kunststofproducten", "industry", 0.010,
             (("3.2", 2), ("4.1", 1)), type_c=0.25, nox_kg=500),
    SbiClass("2361", "Vervaardiging van betonwaren voor de bouw", "industry", 0.006, (("3.2", 1), ("4.1", 1)),
             type_c=0.3, nox_kg=1200),
    SbiClass("2511", "Vervaardiging van metalen constructiewerken", "industry", 0.020, (("3.2", 1),),
             type_c=0.2, nox_kg=400),
    SbiClass("2561", "Oppervlaktebehandeling van metalen", "industry", 0.008, (("3.2", 1), ("4.1", 1)),
             type_c=0.5, nox_kg=900),
    SbiClass("2562", "Algemene metaalbewerking", "industry", 0.025, (("3.1", 1), ("3.2", 1)), type_c=0.1),
    SbiClass("3109", "Vervaardiging van meubels", "industry", 0.010, (("3.2", 1),), type_c=0.1),
    SbiClass("2030", "Vervaardiging van verf, lak, vernis, inkt en mastiek", "industry", 0.003,
             (("4.1", 1), ("4.2", 1)), type_c=0.6, brzo=0.05, nox_kg=1500),
    SbiClass("2110", "Vervaardiging van farmaceutische grondstoffen", "industry", 0.001,
             (("4.2", 1), ("5.1", 1)), type_c=0.9, brzo=0.1, nox_kg=5000),
    SbiClass("2442", "Vervaardiging van aluminium", "industry", 0.001, (("5.1", 1), ("5.2", 1)), type_c=1.0,
             nox_kg=60000),
    # heavy industry (harbour and chemical clusters)
    SbiClass("1920", "Vervaardiging van aardolieproducten", "heavy", 0.0002, (("6", 1),), type_c=1.0, brzo=1.0,
             nox_kg=900000),
    SbiClass("2014", "Vervaardiging van overige organische basischemicaliën", "heavy", 0.0008,
             (("5.2", 1), ("5.3", 1)), type_c=1.0, brzo=0.5, nox_kg=120000),
    SbiClass("2016", "Vervaardiging van kunststof in primaire vorm", "heavy", 0.0008, (("5.1", 1), ("5.2", 1)),
             type_c=1.0, brzo=0.35, nox_kg=60000),
    SbiClass("2015", "Vervaardiging van kunstmeststoffen en stikstofverbindingen", "heavy", 0.0003,
             (("5.2", 1), ("5.3", 1)), type_c=1.0, brzo=0.6, nh3_kg=150000, nox_kg=400000),
    SbiClass("2011", "Vervaardiging van industriële gassen", "heavy", 0.0004, (("4.2", 1), ("5.1", 1)),
             type_c=1.0, brzo=0.4, nox_kg=20000),
    SbiClass("3511", "Productie van elektriciteit", "heavy", 0.0006, (("4.2", 1), ("5.2", 1), ("5.3", 1)),
             type_c=1.0, brzo=0.1, nox_kg=300000),
    SbiClass("52102", "Opslag in tanks", "heavy", 0.001, (("4.2", 1), ("5.1", 1)), type_c=1.0, brzo=0.35,
             nox_kg=5000),
    # garages and fuel
    SbiClass("45201", "Algemene reparatie en onderhoud van personenauto's en lichte bedrijfsauto's", "garage",
             0.055, (("2", 1),)),
    SbiClass("45203", "Carrosseriereparatie en spuiterijen", "garage", 0.02, (("3.1", 1),)),
    SbiClass("4730", "Detailhandel in motorbrandstoffen", "garage", 0.015, (("2", 2), ("3.1", 1))),
    SbiClass("4511", "Handel in en reparatie van personenauto's en lichte bedrijfsauto's", "garage", 0.010,
             (("2", 1),)),
    # catering
    SbiClass("56101", "Restaurants", "catering", 0.12, (("1", 1),)),
    SbiClass("56102", "Fastfoodrestaurants, cafetaria's, ijssalons, eetkramen e.d.", "catering", 0.06,
             (("1", 1),)),
    SbiClass("5630", "Cafés", "catering", 0.06, (("1", 1),)),
    # waste
    SbiClass("3811", "Inzameling van niet-gevaarlijk afval", "waste", 0.008, (("3.1", 1), ("3.2", 1)),
             type_c=0.5),
    SbiClass("3812", "Inzameling van gevaarlijk afval", "waste", 0.002, (("4.1", 1), ("4.2", 1)), type_c=0.9,
             brzo=0.05),
    SbiClass("3821", "Behandeling en verwijdering van niet-gevaarlijk afval", "waste", 0.005,
             (("4.1", 2), ("4.2", 2), ("5.1", 1)), type_c=0.9, nox_kg=8000),
    SbiClass("3822", "Behandeling en verwijdering van gevaarlijk afval", "waste", 0.001,
             (("4.2", 1), ("5.1", 1), ("5.2", 1)), type_c=1.0, brzo=0.2, nox_kg=25000),
    SbiClass("3831", "Demontage van afgedankte auto's en andere goederen", "waste", 0.004,
             (("3.2", 1), ("4.1", 1)), type_c=0.7),
    SbiClass("3832", "Voorbereiding tot recycling", "waste", 0.005, (("4.1", 1), ("4.2", 1)), type_c=0.8,
             nox_kg=1000),
    # retail and schools (often type A)
    SbiClass("4711", "Supermarkten en dergelijke winkels met een algemeen assortiment", "retail", 0.05,
             (("1", 1),), type_a=0.3),
    SbiClass("4752", "Winkels in doe-het-zelfartikelen (bouwmarkten)", "retail", 0.015, (("2", 1),),
             type_a=0.3),
    SbiClass("4776", "Winkels in bloemen, planten en dierbenodigdheden (tuincentra)", "retail", 0.01,
             (("2", 1),), type_a=0.3),
    SbiClass("8520", "Basisonderwijs", "school", 0.025, (("2", 1),), type_a=0.7),
    # services, transport, storage, construction
    SbiClass("9601", "Wassen en (chemisch) reinigen van textiel en bont", "services", 0.006,
             (("3.1", 2), ("3.2", 1)), type_c=0.1),
    SbiClass("8610", "Ziekenhuizen", "services", 0.004, (("3.1", 1),), type_c=0.3, nox_kg=3000),
    SbiClass("9311", "Exploitatie van sportaccommodaties", "services", 0.03, (("2", 1), ("3.1", 1)),
             type_a=0.2),
    SbiClass("4941", "Goederenvervoer over de weg", "logistics", 0.025, (("3.1", 2), ("3.2", 1))),
    SbiClass("52109", "Overige opslag", "logistics", 0.01, (("3.1", 1), ("4.1", 1)), type_c=0.2),
    SbiClass("4671", "Groothandel in vaste, vloeibare en gasvormige brandstoffen", "logistics", 0.003,
             (("3.2", 1), ("4.2", 1)), type_c=0.5, brzo=0.08),
    SbiClass("4120", "Algemene burgerlijke en utiliteitsbouw", "logistics", 0.02, (("3.1", 1),)),
    SbiClass("4332", "Bouwtimmeren", "logistics", 0.012, (("3.1", 1),)),
)

SECTOR_ACTIVITIES: dict[str, tuple[str, ...]] = {
    "livestock": ("houden van landbouwhuisdieren in dierenverblijven", "opslaan van vaste mest",
                  "opslaan van drijfmest", "opslaan van kuilvoer", "gebruik van een luchtwassysteem",
                  "in werking hebben van een stookinstallatie"),
    "greenhouse": ("telen van gewassen in een kas", "in werking hebben van een WKK-installatie",
                   "lozen van drainagewater", "opslaan van gewasbeschermingsmiddelen"),
    "rural_service": ("stallen en onderhouden van landbouwvoertuigen", "opslaan van gewasbeschermingsmiddelen",
                      "afleveren van vloeibare brandstof"),
    "industry": ("verspanen en mechanisch bewerken van metalen", "lassen van metalen",
                 "opslaan van gevaarlijke stoffen in verpakking", "in werking hebben van een stookinstallatie",
                 "lozen van bedrijfsafvalwater", "aanbrengen van coatings",
                 "bewerken van kunststoffen", "bereiden van voedingsmiddelen", "houtbewerking"),
    "heavy": ("opslaan van gevaarlijke stoffen in opslagtanks", "in werking hebben van een stookinstallatie",
              "chemische procesinstallatie", "laden en lossen van schepen", "lozen van bedrijfsafvalwater",
              "in werking hebben van een fakkel"),
    "garage": ("onderhouden en repareren van motorvoertuigen", "afleveren van vloeibare brandstof",
               "spuiten van motorvoertuigen", "wassen van motorvoertuigen", "opslaan van afgewerkte olie"),
    "catering": ("bereiden van voedingsmiddelen", "in werking hebben van een koelinstallatie",
                 "ten gehore brengen van muziek", "in werking hebben van een terras"),
    "waste": ("opslaan van afvalstoffen", "breken van steenachtig materiaal", "sorteren van afvalstoffen",
              "demonteren van autowrakken", "composteren van groenafval"),
    "retail": ("in werking hebben van een koelinstallatie", "laden en lossen van goederen",
               "opslaan van gasflessen"),
    "school": ("in werking hebben van een stookinstallatie", "in werking hebben van een gymzaal"),
    "services": ("in werking hebben van een stookinstallatie", "in werking hebben van een koelinstallatie",
                 "reinigen van textiel", "in werking hebben van een zwembad",
                 "in werking hebben van een noodstroomaggregaat"),
    "logistics": ("opslaan van goederen", "laden en lossen van goederen", "stallen van vrachtwagens",
                  "afleveren van vloeibare brandstof", "opslaan van gevaarlijke stoffen in verpakking"),
}

VIOLATIONS: dict[str, tuple[str, ...]] = {
    "livestock": ("meer dieren gehouden dan vergund", "emissiearm stalsysteem niet in werking",
                  "registratie luchtwasser onvolledig", "mestopslag niet afgedekt", "kadavers niet afgeschermd",
                  "kuilvoerplaat niet schoon", "afvalwater naar de bodem"),
    "greenhouse": ("lozing drainagewater zonder zuivering", "lichtafscherming ontbreekt",
                   "opslag gewasbeschermingsmiddelen niet conform PGS 15", "emissie WKK boven de eis"),
    "rural_service": ("opslag gewasbeschermingsmiddelen niet conform PGS 15", "vloeistofdichte vloer ontbreekt"),
    "industry": ("opslag gevaarlijke stoffen niet conform PGS 15", "geluidsnorm overschreden",
                 "lekbak ontbreekt", "bodembeschermende voorziening niet in orde",
                 "afvalwater geloosd zonder voorzuivering", "registratie afvalstoffen onvolledig",
                 "emissie-eis stookinstallatie overschreden", "keuring blusmiddelen verlopen"),
    "heavy": ("veiligheidsbeheerssysteem niet actueel", "opslag gevaarlijke stoffen niet conform PGS 29",
              "lekdetectie niet functionerend", "emissie-eis overschreden", "registratie fakkelen onvolledig"),
    "garage": ("olie-afscheider niet onderhouden", "lekbak ontbreekt", "opslag afgewerkte olie niet in orde",
               "registratie afvalstoffen onvolledig", "keuring LPG-installatie verlopen"),
    "catering": ("vetafscheider niet onderhouden", "geluidsnorm overschreden",
                 "koelinstallatie niet gekeurd", "terras buiten de vergunde tijden in gebruik"),
    "waste": ("acceptatieprocedure niet gevolgd", "opslag boven de vergunde hoeveelheid",
              "registratie afvalstoffen onvolledig", "stofemissie bij breken", "brandveiligheid opslag",
              "niet-vergunde afvalstoffen aanwezig"),
    "retail": ("koelinstallatie niet gekeurd", "opslag gasflessen niet conform PGS 15"),
    "school": ("stookinstallatie niet gekeurd",),
    "services": ("stookinstallatie niet gekeurd", "opslag gevaarlijke stoffen niet conform PGS 15",
                 "registratie legionellabeheer onvolledig"),
    "logistics": ("opslag gevaarlijke stoffen niet conform PGS 15", "vloeistofdichte vloer niet gekeurd",
                  "geluidsnorm overschreden bij laden en lossen", "lekbak ontbreekt"),
}

# Base chance that an inspection in the sector finds a violation, and complaints per year.
SECTOR_VIOLATION_RATE: dict[str, float] = {
    "livestock": 0.18, "greenhouse": 0.14, "rural_service": 0.12, "industry": 0.15, "heavy": 0.15,
    "garage": 0.17, "catering": 0.12, "waste": 0.21, "retail": 0.07, "school": 0.05, "services": 0.09,
    "logistics": 0.13,
}
SECTOR_COMPLAINT_RATE: dict[str, float] = {
    "livestock": 0.04, "greenhouse": 0.03, "rural_service": 0.02, "industry": 0.06, "heavy": 0.25,
    "garage": 0.03, "catering": 0.09, "waste": 0.12, "retail": 0.01, "school": 0.005, "services": 0.02,
    "logistics": 0.04,
}

LEGAL_FORMS: dict[str, tuple[tuple[str, float], ...]] = {
    "farm": (("Eenmanszaak", 0.35), ("Maatschap", 0.25), ("Vennootschap onder firma", 0.25),
             ("Besloten Vennootschap", 0.15)),
    "small": (("Eenmanszaak", 0.38), ("Vennootschap onder firma", 0.17), ("Besloten Vennootschap", 0.42),
              ("Commanditaire Vennootschap", 0.03)),
    "company": (("Besloten Vennootschap", 0.82), ("Naamloze Vennootschap", 0.03), ("Eenmanszaak", 0.08),
                ("Vennootschap onder firma", 0.07)),
    "large": (("Besloten Vennootschap", 0.85), ("Naamloze Vennootschap", 0.15)),
    "public": (("Stichting", 0.85), ("Vereniging", 0.15)),
    "coop": (("Besloten Vennootschap", 0.6), ("Coöperatie", 0.25), ("Naamloze Vennootschap", 0.15)),
}
SECTOR_LEGAL: dict[str, str] = {
    "livestock": "farm", "greenhouse": "farm", "rural_service": "small", "industry": "company",
    "heavy": "large", "garage": "small", "catering": "small", "waste": "company", "retail": "small",
    "school": "public", "services": "small", "logistics": "company",
}

SURNAMES = (
    "de Jong", "Jansen", "de Vries", "van den Berg", "van Dijk", "Bakker", "Visser", "Smit", "Meijer",
    "de Boer", "Mulder", "de Groot", "Bos", "Vos", "Peters", "Dekker", "Brouwer", "de Wit", "de Graaf",
    "van der Meer", "van der Linden", "Kok", "Jacobs", "de Haan", "Vermeulen", "van Leeuwen", "Schouten",
    "van Beek", "Willems", "van Vliet", "Koster", "van Dam", "van der Wal", "Prins", "Blom", "Huisman",
    "de Leeuw", "Kuipers", "van Wijk", "Kramer", "Brinkman", "Vink", "Gerritsen", "Hofman", "Wolters",
    "Lammers", "Groen", "Post", "Evers", "van Rijn", "Scholten", "Hoogendoorn", "Verbeek", "Kuiper",
    "van Essen", "Wessels", "Bouwman", "Veldman", "Nijhuis", "Oosterhof", "Harmsen", "Klaassen",
    "ten Have", "Wijers", "Heijnen", "Reuvers", "Stegeman", "Kamphuis", "Roelofs", "Hulshof",
)
SURNAMES_NORTH = (
    "Hoekstra", "Dijkstra", "Postma", "Veenstra", "Boersma", "Wiersma", "Zijlstra", "Bosma", "Terpstra",
    "de Haan", "Visser", "Kingma", "Hiemstra", "Tuinstra", "Jelsma", "Sikkema", "Wijbenga", "Bakker",
)
SURNAMES_SOUTH = (
    "van de Ven", "Verhoeven", "van der Heijden", "Hendriks", "Hermans", "van den Broek", "Peeters",
    "Janssen", "Smits", "van Dongen", "van Gils", "Verstappen", "Martens", "Coenen", "Hendrix", "Thijssen",
    "van Lieshout", "van de Laar", "Verheijen", "Cuijpers", "Aarts", "Brouns",
)
INITIALS = ("J.", "A.", "H.J.", "G.", "W.", "M.", "P.", "A.C.", "J.W.", "R.", "T.", "B.", "H.", "E.", "K.",
            "G.J.", "F.", "C.", "L.", "S.", "D.", "M.A.", "J.H.", "R.J.")

PLACE_NOUNS = ("De Gouden Leeuw", "De Zwaan", "De Kroon", "'t Hoekje", "De Molen", "De Brink",
               "Het Pleintje", "De Linde", "'t Veerhuis", "De Smidse", "De Posthoorn", "De Bonte Koe",
               "De Wildeman", "Het Wapen", "De Roode Leeuw", "De Eenhoorn", "De Klok", "De Zon",
               "'t Centrum", "De Haven", "De Poort", "De Hoeve", "Het Anker", "De Pauw", "De Engel",
               "De Kastanje", "'t Trefpunt", "De Toren", "De Sluis", "De Schans")
WORD_STEMS = ("Noord", "Zuid", "Oost", "West", "Delta", "Polder", "Rivier", "Dijk", "Kempen", "Veluwe",
              "Maas", "Rijn", "IJssel", "Eem", "Vallei", "Peel", "Kust", "Holland", "Twente", "Lage Landen")
ACRONYMS = ("ABM", "NVK", "HTC", "DMB", "KVT", "RBS", "PMC", "VDL", "TKM", "BWN", "SGM", "EPN", "HKV",
            "NRG", "CVP", "MTB", "AVR", "LMD")

STREETS_URBAN = ("Dorpsstraat", "Kerkstraat", "Hoofdstraat", "Marktplein", "Stationsweg", "Stationsplein",
                 "Schoolstraat", "Molenstraat", "Julianastraat", "Wilhelminastraat", "Beatrixlaan",
                 "Kastanjelaan", "Lindenlaan", "Nieuwstraat", "Langestraat", "Grote Markt", "Brink",
                 "Raadhuisplein", "Oranjestraat", "Torenstraat", "Havenstraat", "Voorstraat", "Emmalaan",
                 "Parallelweg", "Burgemeester de Withstraat", "Prins Hendrikstraat", "Koningsweg")
STREETS_INDUSTRIAL = ("Industrieweg", "Nijverheidsweg", "Ambachtsweg", "Handelsweg", "Energieweg",
                      "Edisonstraat", "Newtonstraat", "Havenweg", "Transportweg", "Fabrieksstraat",
                      "Techniekweg", "Innovatielaan", "Zuiderhavenweg", "Kanaalweg", "Bedrijvenweg",
                      "Smederijstraat", "Keurmeesterstraat")
STREETS_RURAL = ("Veldweg", "Broekweg", "Hessenweg", "Kerkweg", "Molenweg", "Heideweg", "Zandweg",
                 "Achterweg", "Dijkweg", "Bosweg", "Beekweg", "Esweg", "Hooiweg", "Boerenweg", "Grintweg",
                 "Meentweg", "Middelweg", "Kampweg", "Peelweg", "Vennenweg", "Vaartweg", "Buurtweg",
                 "Slingerweg", "Hoge Weg", "Lage Weg")

VILLAGE_PREFIXES = ("Ooster", "Wester", "Noorder", "Zuider", "Nieuw", "Oud", "Hoog", "Laag", "Groot",
                    "Klein", "Holt", "Beek", "Broek", "Veen", "Berg", "Dijk", "Hors", "Ter ", "Den ",
                    "Mid", "Haar", "Heer", "Zand", "Rijn", "Linde", "Esse", "Meer", "Wolde", "Ham")
VILLAGE_SUFFIXES = ("veen", "horst", "broek", "wijk", "dorp", "hoven", "beek", "loo", "zand", "huizen",
                    "dijk", "woude", "rade", "ven", "kamp", "hout", "werve", "um", "erveld", "lo", "sum",
                    "ingen", "oord", "meer", "holt")

HOUSING_SUFFIXES = ("Noord", "Oost", "Zuid", "West", "De Weide", "Het Ven", "De Laren", "Hoge Akker",
                    "Molenveld", "Kloosterhof", "Buitenplaats", "Stationsgebied", "De Kamp", "Veldzicht",
                    "Esdoornpark", "Het Broek", "De Driehoek", "Parkhaven", "Buitenhof", "De Maten",
                    "Hof van Zuid", "De Groene Zoom", "Kanaalzone", "Het Eiland", "De Tuinen", "Beekdal",
                    "De Essen", "Akkerwinde", "Weidevogel", "Lindehof")

GEBRUIKSDOELEN = ("woonfunctie", "industriefunctie", "kantoorfunctie", "winkelfunctie",
                  "bijeenkomstfunctie", "onderwijsfunctie", "gezondheidszorgfunctie", "logiesfunctie",
                  "sportfunctie", "overige gebruiksfunctie", "celfunctie")

# CBS municipality of a town where its name differs from the town's.
TOWN_MUNICIPALITY: dict[str, str] = {
    "Den Haag": "'s-Gravenhage", "Hoofddorp": "Haarlemmermeer", "Zaandam": "Zaanstad",
    "Naaldwijk": "Westland", "Sittard": "Sittard-Geleen", "Sneek": "Súdwest-Fryslân",
    "Spijkenisse": "Nissewaard", "Veghel": "Meierijstad", "Leidschendam": "Leidschendam-Voorburg",
    "IJmuiden": "Velsen", "Berkel en Rodenrijs": "Lansingerland", "Bussum": "Gooise Meren",
    "Heerhugowaard": "Dijk en Waard", "Pijnacker": "Pijnacker-Nootdorp", "Drachten": "Smallingerland",
    "Uden": "Maashorst", "Emmeloord": "Noordoostpolder", "Rijssen": "Rijssen-Holten",
    "Nijverdal": "Hellendoorn", "Gemert": "Gemert-Bakel", "Horst": "Horst aan de Maas",
    "Panningen": "Peel en Maas", "Dokkum": "Noardeast-Fryslân", "Velp": "Rheden", "Oosterbeek": "Renkum",
    "Borculo": "Berkelland", "Ulft": "Oude IJsselstreek", "Lichtenvoorde": "Oost Gelre",
    "Hengelo (Gld)": "Bronckhorst", "Didam": "Montferland", "Twello": "Voorst",
}
