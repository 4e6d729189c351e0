"""Who a rule's records are measured for: the audience rules that keep quality answers from disclosing what
the caller may not read (docs/privacy.md, "Quality explanations").

Row-level security already limits the rows of restricted layers to the caller's; this adds what RLS cannot:

- a rule that reads a **personal field** of a natural person's record (name, KvK number, street, house
  number, the full postcode) lists and counts only the records whose personal fields the caller may see
  (``establishments.kvk_number-filled`` must not tell anyone that a named sole proprietor has no KvK, and
  ``signal.address-location-mismatch`` gives no distance to a natural person's address);
- a rule over a layer with personal rows that **depends on a restricted layer** (the inspections) is
  measured only over the records whose restricted rows the caller sees in full: an inspector over their own
  organisation's establishments, an advisor over those that are not a natural person's (so nobody is told
  that establishments of another organisation were "never inspected");
- ``@visible(x)`` in a rule's SQL stands for "the caller may see the personal fields of record ``x``", so a
  reason names another record only when the caller may see it (``signal.kvk-far-apart``).

Without a principal (``twin quality report``, ingest) every record counts, as before.
"""

from __future__ import annotations

import re
from functools import cache

from psycopg import sql

from layers.quality_spec import QualityRule
from layers.registry import LAYERS, get_layer
from twin.access import (
    Principal,
    coarsened_fields,
    has_personal_rows,
    personal_fields,
    personal_row_sql,
    sees_personal_sql,
)

VISIBLE = re.compile(r"@visible\(([a-z_][a-z0-9_]*)\)")


@cache
def reads_personal(rule: QualityRule) -> bool:
    """Whether the rule's SQL reads a personal (or coarsened) field of its own layer's record ``t``."""
    spec = LAYERS.get(rule.layer)
    if spec is None or not has_personal_rows(spec):
        return False
    names = (*personal_fields(spec), *coarsened_fields(spec))
    pattern = re.compile(r"\bt\.(" + "|".join(map(re.escape, names)) + r")\b")
    s = rule.sql
    return any(pattern.search(text) for text in (s.joins, s.applies, s.fails, s.reason))


def reads_restricted(rule: QualityRule) -> bool:
    """Whether the rule reads a restricted layer besides its own (whose rows RLS limits per caller)."""
    return any(LAYERS[d].access != "public" for d in rule.depends_on if d in LAYERS)


def scope_sql(rule: QualityRule, principal: Principal | None) -> sql.Composable | None:
    """A condition on ``t`` limiting the records the rule applies to for this caller; None: every record."""
    if principal is None or principal.role == "admin":
        return None
    spec = LAYERS.get(rule.layer)
    if spec is None or not has_personal_rows(spec):
        return None
    conds: list[sql.Composable] = []
    if reads_personal(rule):
        conds.append(sees_personal_sql(principal, spec, "t"))
    if reads_restricted(rule):
        if principal.role == "inspector" and principal.org_code:
            conds.append(sql.SQL("t.org_code = {}").format(sql.Literal(principal.org_code)))
        elif principal.role == "advisor":
            conds.append(sql.SQL("NOT {}").format(personal_row_sql(spec, "t")))
        else:
            conds.append(sql.SQL("false"))
    if not conds:
        return None
    return sql.SQL("({})").format(sql.SQL(" AND ").join(conds))


def scoped(rule: QualityRule, principal: Principal | None) -> bool:
    """Whether the caller's answer differs from the recorded one (which counts every record)."""
    return scope_sql(rule, principal) is not None or (
        principal is not None and principal.role != "admin" and bool(VISIBLE.search(rule.sql.joins + rule.sql.reason
                                                                                     + rule.sql.fails)))


def visible_sql(rule: QualityRule, principal: Principal | None, alias: str) -> sql.Composable:
    """What ``@visible(alias)`` stands for: the caller may see the personal fields of that record."""
    spec = LAYERS.get(rule.layer)
    if principal is None or spec is None:
        return sql.SQL("true")
    return sees_personal_sql(principal, spec, alias)


# The audience the public counts are for: anonymous callers (and public keys and advisors, who see the same
# records of public layers).
PUBLIC = Principal(role="anonymous")


def public_counts_apply(rule: QualityRule) -> bool:
    """Whether a rule gets counts of its own for the public: it reads public layers only (no row-level security
    decides what a caller counts, so the writer's count under the audience's scope is exactly the count a live
    measurement gives anonymous callers, public keys and advisors) and the audience scope changes its answer."""
    return all(get_layer(x).access == "public" for x in (rule.layer, *rule.depends_on)) and scoped(rule, PUBLIC)
