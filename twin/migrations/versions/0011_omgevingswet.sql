-- Issue 16: real CIM-VTH-Flo and KvK deliveries, Omgevingswet terms.
--
-- establishments.bal_regime: since 1 January 2024 (Omgevingswet) the Besluit activiteiten leefomgeving (Bal)
-- says per milieubelastende activiteit whether it needs a permit, a notification or information beforehand;
-- it replaces the Activiteitenbesluit's types A/B/C, which stay for older deliveries.
ALTER TABLE twin.establishments
  ADD COLUMN IF NOT EXISTS bal_regime text
    CHECK (bal_regime IN ('vergunningplichtig', 'meldingsplichtig', 'informatieplichtig')),
  -- The owners are natural persons (eenmanszaak, vof, maatschap, cv): the name and KvK number identify people.
  ADD COLUMN IF NOT EXISTS natural_person_owner boolean NOT NULL DEFAULT false;

UPDATE twin.establishments
   SET natural_person_owner = true
 WHERE sole_proprietor
    OR lower(btrim(legal_form)) ~ '^(eenmanszaak|vennootschap onder firma|maatschap|commanditaire vennootschap)';

-- inspections.repaired_on: CIM-VTH-Flo OVERTREDING.Hersteldatum, "de datum waarop door of namens het bevoegd
-- gezag geconstateerd is dat de overtreding is weggenomen" (the violation found ended), which the twin
-- used to store as repair_deadline. repair_deadline stays for the deadline a VTH system sets (hersteltermijn).
ALTER TABLE twin.inspections ADD COLUMN IF NOT EXISTS repaired_on date;
