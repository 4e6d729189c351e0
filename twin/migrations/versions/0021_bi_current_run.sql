-- BI feed of the current KPI run (issue 22; docs/bi.md): since migration 0018 a run can be a recomputation as of a
-- date from the history (twin.kpi_runs.from_history), and such a run may be the newest one. bi.fact_kpi_values_v1
-- shows the newest run computed from the current state instead of simply the highest run id. Same columns and
-- types (layers/data/bi_contract.json), so the view keeps its version; CREATE OR REPLACE keeps its grants.
CREATE OR REPLACE VIEW bi.fact_kpi_values_v1 WITH (security_barrier) AS
  SELECT v.run_id, r.as_of, r.computed_at, r.data_version, v.kpi, v.period_type, v.period_start, v.period_end,
         v.dimension, v.dimension_value, v.scope_org, v.numerator, v.denominator, v.value, v.ci_low, v.ci_high,
         v.audience, v.change_z, v.change_q, v.change
  FROM twin.kpi_values v JOIN twin.kpi_runs r ON r.id = v.run_id
  WHERE v.run_id = (SELECT c.id FROM twin.kpi_runs c WHERE NOT c.from_history
                    ORDER BY c.known_on DESC, c.id DESC LIMIT 1)
    AND (v.audience = 'public' OR (v.audience = 'org' AND v.scope_org = bi.viewer_org()));

COMMENT ON VIEW bi.fact_kpi_values_v1 IS 'KPI values of the newest twin monitor compute run on the current state (not an as-of recomputation from the history): public figures and the viewer organisation''s';
