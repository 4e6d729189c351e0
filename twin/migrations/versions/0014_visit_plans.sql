-- Visit plans (issue 21): `twin priority plan --capacity N --random-share 0.1 --method model|rules|blend`
-- stores a dated, versioned plan; a past plan stays explainable by its model (registry id and version)
-- and its data cut-off. The plan is advice: the coordinators' overrides (twin.priority_overrides, with
-- their history) are laid over it when it is read.
CREATE TABLE twin.visit_plans (
  plan_id        bigserial PRIMARY KEY,
  created_at     timestamptz NOT NULL DEFAULT now(),
  created_by     text NOT NULL DEFAULT current_user,
  method         text NOT NULL CHECK (method IN ('model', 'rules', 'blend')),
  plan_year      integer NOT NULL,
  data_cutoff    date NOT NULL,        -- features from records dated before this day only
  model_id       text,                 -- the registry id (data folder models/<id>), null for rules
  model_version  text,                 -- vth-twin and library versions, training-data hash
  capacity       integer NOT NULL CHECK (capacity > 0),
  random_share   double precision NOT NULL CHECK (random_share >= 0 AND random_share <= 1),
  seed           integer NOT NULL,
  rules_source   text,
  n_candidates   integer NOT NULL,
  note           text
);
CREATE INDEX visit_plans_method_idx ON twin.visit_plans (method, created_at DESC);

CREATE TABLE twin.visit_plan_items (
  plan_id           bigint NOT NULL REFERENCES twin.visit_plans (plan_id) ON DELETE CASCADE,
  rank              integer NOT NULL CHECK (rank > 0),
  establishment_id  text NOT NULL,
  org_code          text,
  selection         text NOT NULL CHECK (selection IN ('risk', 'random')),
  probability       double precision,   -- calibrated P(next inspection finds a violation); null for rules
  rules_score       double precision,
  score             double precision NOT NULL,
  reasons           jsonb NOT NULL DEFAULT '[]',   -- the model's TreeSHAP reasons, worded
  PRIMARY KEY (plan_id, rank)
);
CREATE INDEX visit_plan_items_establishment_idx ON twin.visit_plan_items (establishment_id);

GRANT SELECT, INSERT, DELETE ON twin.visit_plans, twin.visit_plan_items TO twin_writer;
GRANT USAGE, SELECT ON SEQUENCE twin.visit_plans_plan_id_seq TO twin_writer;
GRANT SELECT ON twin.visit_plans, twin.visit_plan_items TO twin_reader,
  twin_api_public, twin_api_advisor, twin_api_inspector, twin_api_admin;

-- Plan items are derived from inspection data: the same audiences as the inspections (admins all,
-- inspectors their own organisation's; advisors, public and anonymous none).
ALTER TABLE twin.visit_plan_items ENABLE ROW LEVEL SECURITY;
CREATE POLICY visit_plan_items_owner ON twin.visit_plan_items FOR ALL TO twin_owner USING (true) WITH CHECK (true);
CREATE POLICY visit_plan_items_writer ON twin.visit_plan_items FOR ALL TO twin_writer USING (true) WITH CHECK (true);
CREATE POLICY visit_plan_items_admin ON twin.visit_plan_items FOR SELECT TO twin_api_admin USING (true);
CREATE POLICY visit_plan_items_inspector ON twin.visit_plan_items FOR SELECT TO twin_api_inspector
  USING (org_code = twin.request_org());
