"""Settings of the twin, read from the environment with the prefix ``TWIN_`` (and an optional ``.env``).

Only entry points (the CLI, the ASGI factory) call :func:`get_settings`; everything else receives a
``Settings`` object.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def default_data_dir() -> Path:
    """The local data folder when TWIN_DATA_DIR is unset, the same from any working directory: ``.twin`` in
    the checkout when the twin runs from one (an editable install), else the user's data folder
    (``$XDG_DATA_HOME/vth-twin``, by default ``~/.local/share/vth-twin``)."""
    pyproject = PROJECT_ROOT / "pyproject.toml"
    try:
        if 'name = "vth-twin"' in pyproject.read_text(encoding="utf-8"):
            return PROJECT_ROOT / ".twin"
    except OSError:
        pass
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg) / "vth-twin"


class Settings(BaseSettings):
    """All ``TWIN_`` settings. Documented one by one in the README's configuration section."""

    model_config = SettingsConfigDict(env_prefix="TWIN_", env_file=".env", extra="ignore")

    # Database. When database_url is unset the twin runs its own PostGIS cluster in data_dir.
    database_url: str | None = Field(
        default=None, description="Owner URL of an existing PostGIS database (runs migrations)."
    )
    writer_url: str | None = Field(default=None, description="URL for ingest (writer role).")
    reader_url: str | None = Field(default=None, description="URL for the API (read-only role).")
    writer_password: SecretStr | None = Field(default=None, description="Password set for twin_writer.")
    reader_password: SecretStr | None = Field(default=None, description="Password set for twin_reader.")
    data_dir: Path = Field(default_factory=default_data_dir,
                           description="Folder of the local cluster and run files (default: see default_data_dir).")
    pg_port: int = Field(default=54329, description="Port of the local cluster (127.0.0.1 and its socket).")
    pg_bindir: Path | None = Field(default=None, description="PostgreSQL binaries; found automatically.")
    database_name: str = Field(default="twin", description="Database name in the local cluster.")
    value_maps: list[Path] = Field(
        default_factory=list, description="Your own value-map files (JSON list of YAML paths), read after the shipped "
        "ones in layers/data/valuemaps/ and winning over them (see docs/ingest.md).")
    kdw_file: Path | None = Field(
        default=None, description="Your own KDW list (CSV code,kdw[,name_nl]), merged over the shipped "
        "layers/data/kdw.csv and winning over it: the KDW of habitat types it lacks (see docs/ingest.md).")
    statement_timeout_ms: int = Field(default=15000, description="statement_timeout of the API's role.")
    pool_min_size: int = 1
    pool_max_size: int = 8
    pool_timeout_s: float = Field(default=2.0, description="Wait for a pooled connection before 503.")
    pgbouncer: bool = Field(default=False, description="The API's database URLs lead to PgBouncer in transaction mode: "
                            "psycopg prepares no statements (a prepared statement lives on one server connection; "
                            "costs ~0.3 ms of planning per request, docs/scaling.md).")
    reader_urls: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Read replicas (hot standbys: libpq URLs separated by commas or a JSON "
        "list, e.g. from `twin db replica add`): the API reads from a healthy one and falls back to the primary; "
        "empty: the primary only. "
        "A URL without a user gets the reader role and its password.")
    max_replica_lag_s: float = Field(default=30.0, gt=0, description="A replica lagging more than this is taken out "
                                     "of the API's reads until it catches up.")
    replica_check_s: float = Field(default=1.0, gt=0, description="How often each API process checks its replicas' "
                                   "health and lag.")

    # Serving
    host: str = "127.0.0.1"
    port: int = 8000
    basemap_url: str | None = Field(default=None, description="XYZ basemap template for the map.")
    cors_origins: list[str] = Field(default_factory=list, description="Allowed CORS origins; empty: off.")
    trusted_proxies: str | None = Field(
        default=None, description="Addresses of reverse proxies (nginx, a load balancer) whose X-Forwarded-For and "
        "X-Forwarded-Proto the API believes (comma-separated, e.g. 127.0.0.1); unset: none, so the rate limit per "
        "address sees the proxy's address. `twin serve` passes it to uvicorn's forwarded_allow_ips.")
    tile_cache_mb: float = Field(default=64.0, ge=0, description="Memory for cut vector tiles per API process "
                                 "(kept until their table changes); 0: no cache.")
    analysis_cache_mb: float = Field(default=32.0, ge=0, description="Memory per API process for answers of "
                                     "/analysis/housing-nitrogen (kept until a table it reads changes); 0: none.")
    gzip_level: int = Field(default=1, ge=0, le=9, description="gzip level of answers of 1 kB and more to clients "
                            "that accept it (1 fastest, 9 smallest); 0: off, e.g. behind a proxy that compresses.")
    cursor_secret: SecretStr | None = Field(
        default=None, description="Key that signs the paging cursors of the items' next links (HMAC-SHA256); unset: "
        "a random key kept in data_dir/cursor-secret, shared by every API process of the host.")
    max_offset: int = Field(default=10_000, ge=0, description="Largest offset /items accepts (offset paging slows "
                            "with depth); beyond it the answer is a 400 pointing to the next links (cursors).")
    history_retention_days: int = Field(
        default=3650, ge=1, description="Days the history keeps superseded versions (`twin history --prune`): a "
        "version whose registration or validity ended longer ago is deleted; current versions always stay. "
        "Personal data must not be kept longer than needed (docs/history.md, docs/privacy.md).")
    download_dir: Path | None = Field(
        default=None, description="Cache of the bulk downloads (/collections/{id}/download.gpkg|parquet|csv), one "
        "file per layer version and audience; default data_dir/downloads.")

    # --- Security and access (issue 8; see docs/security.md) -------------------------------------------
    key_cache_s: float = Field(default=10.0, description="Seconds a resolved API key is cached (revocation lag).")
    report_link_ttl_s: float = Field(default=600.0, gt=0, le=86_400, description="Lifetime of a signed report "
                                     "link (/analysis/link): a report opened in a new tab with the caller's rights.")
    oidc_issuer: str | None = Field(default=None, description="OIDC issuer (iss); unset: OIDC tokens are refused.")
    oidc_audience: str | None = Field(default=None, description="Expected audience (aud) of OIDC tokens.")
    oidc_jwks_path: Path | None = Field(default=None, description="JWKS file of the OIDC issuer's signing keys.")
    oidc_jwks_url: str | None = Field(default=None, description="JWKS URL (used when no JWKS path is set).")
    oidc_role_claim: str = Field(default="twin_role", description="Claim holding the role (string or list).")
    oidc_org_claim: str = Field(default="twin_org", description="Claim holding the organisation code.")
    oidc_role_map: dict[str, str] = Field(
        default_factory=dict, description="Claim value -> role (public/advisor/inspector/admin); empty: identity."
    )
    oidc_algorithms: list[str] = Field(default_factory=lambda: ["RS256", "ES256"], description="Accepted JWS algs.")
    oidc_leeway_s: int = Field(default=30, description="Clock skew allowed on exp/nbf/iat.")
    k_anonymity: int = Field(default=5, ge=2, description="Grid cells of restricted layers with fewer are hidden.")
    aggregate_cell_m: int = Field(default=1000, ge=100, description="Cell size (m, RD New) of the public grid.")
    auditor_url: str | None = Field(default=None, description="URL of the twin_auditor role (external DB).")
    auditor_password: SecretStr | None = Field(default=None, description="Password of twin_auditor (external DB).")
    audit_enabled: bool = Field(default=True, description="Write the audit log of restricted-record access.")
    max_body_bytes: int = Field(default=1_048_576, description="Largest request body; larger: 413.")
    pool_reconnect_timeout_s: float = Field(
        default=5.0, gt=0, description="A pool gives up a reconnection attempt after this; the next request starts "
        "a fresh one, so service resumes within seconds of the database coming back.")
    rate_limit_rps: float = Field(default=50.0, ge=0, description="Requests/s per key (or IP); 0: no limit.")
    rate_limit_burst: int = Field(default=500, ge=1, description="Token-bucket size per key (or IP).")
    rate_limit_shared: bool = Field(default=True, description="Share the rate limits of all API processes and "
                                    "machines through the primary (an unlogged table, written once per "
                                    "TWIN_RATE_LIMIT_SYNC requests per key); off or unreachable: per process.")
    rate_limit_sync: int = Field(default=20, ge=1, description="Requests a process serves per key between two "
                                 "updates of the shared bucket (the overshoot bound per process).")
    revocation_check_s: float = Field(default=1.0, ge=0, description="How often each API process reads the key "
                                      "revocation epoch (a one-row read on the primary); a revoked or changed key "
                                      "is refused by every process within this (0: no check, key_cache_s only).")
    # --- end of security settings ----------------------------------------------------------------------

    # --- Analyses (twin.analyses; see docs/analyses.md) --------------------------------------------------
    analysis_default_radius_m: float = Field(default=500.0, description="Default radius of the area context.")
    analysis_max_radius_m: float = Field(default=5000.0, description="Largest radius the area context accepts.")
    analysis_habitat_radius_m: float = Field(
        default=3000.0, description="Area context: Natura 2000 habitats within this distance of the point."
    )
    analysis_approach_margin: float = Field(
        default=70.0, description="Approaching overload: deposition above KDW minus this margin (mol N/ha/yr)."
    )
    analysis_housing_habitat_radius_m: float = Field(
        default=5000.0, description="Housing-nitrogen: habitat hexagons searched within this distance of a site."
    )
    analysis_housing_conflict_habitat_m: float = Field(
        default=1000.0, description="Housing-nitrogen: an overloaded hexagon this close makes a conflict."
    )
    analysis_max_area_km2: float = Field(
        default=5000.0, description="Area summary: largest posted polygon accepted (km2)."
    )
    priority_method: Literal["model", "rules", "blend"] = Field(
        default="rules", description="The ranking of the visit plan (`twin priority plan`) and of the map's priority "
        "colouring: the hand-set rules, the predictive model (after `twin model train`), or a blend of both "
        "(docs/algorithm-register.md).")
    priority_weights: Path | None = Field(
        default=None, description="YAML file with the inspection-priority weights (default: twin/priority.yaml)."
    )
    # --- end of analyses ----------------------------------------------------------------------------------

    # --- Data quality (twin.quality; see docs/quality.md) ----------------------------------------------------
    quality_examples: int = Field(default=5, ge=0, description="Example records kept per rule in a report.")
    quality_as_of: date | None = Field(
        default=None, description="Reference date of the rules (YYYY-MM-DD); unset: today (the database's date)."
    )
    quality_max_delivery_age_days: int = Field(
        default=365, ge=1, description="Timeliness: a source whose latest delivery is older than this fails."
    )
    quality_overdue_grace_days: int = Field(
        default=0, ge=0, description="An establishment is overdue this many days after its visit-frequency term."
    )
    quality_follow_up_grace_days: int = Field(
        default=0, ge=0, description="A violation needs follow-up within this many days after its repair deadline."
    )
    quality_permit_distance_m: float = Field(
        default=1000.0, gt=0, description="A permit's geometry farther than this from its establishment fails."
    )
    quality_inspection_distance_m: float = Field(
        default=250.0, gt=0, description="An inspection's point farther than this from its establishment fails."
    )
    quality_kvk_distance_m: float = Field(
        default=10000.0, gt=0, description="Signal: the same KvK number (and branch) at places farther apart."
    )
    quality_address_distance_m: float = Field(
        default=250.0, gt=0, description="Signal: an establishment farther than this from its BAG address."
    )
    quality_building_near_m: float = Field(
        default=25.0, ge=0, description="Linkage: an establishment should lie within this distance of a building."
    )
    quality_building_area_m: float = Field(
        default=500.0, gt=0, description="Linkage to buildings applies where buildings are loaded within this radius."
    )
    quality_max_dwellings_per_ha: float = Field(
        default=400.0, gt=0, description="A housing site planning more dwellings per hectare than this fails."
    )
    # --- end of data quality ----------------------------------------------------------------------------------

    @field_validator("reader_urls", mode="before")
    @classmethod
    def _split_urls(cls, value: object) -> object:
        """TWIN_READER_URLS as ``url1,url2`` or a JSON list."""
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                import json

                return json.loads(text)
            return [u.strip() for u in text.split(",") if u.strip()]
        return value

    @property
    def local_cluster(self) -> bool:
        return self.database_url is None

    @property
    def pgdata(self) -> Path:
        return (self.data_dir / "pgdata").resolve()

    @property
    def socket_dir(self) -> Path:
        return (self.data_dir / "run").resolve()


def get_settings() -> Settings:
    """Settings from the environment; for entry points only."""
    return Settings()
