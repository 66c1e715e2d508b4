-- Patients aged 17 and over without a médecin traitant, and all patients
-- aged 17 and over, by département and year (Assurance Maladie,
-- data.ameli.fr, "Observatoire de l'accès aux soins"): the numerator and
-- denominator of `no_mt_share` (declared in health_densities as
-- ratio(patients_17p_without_mt, patients_17p, 100), so every scale is a
-- ratio of sums, never a mean of départements' shares).
--
-- UNVERIFIED: the dataset id and field names below could not be checked
-- offline. They follow the Explore API v2.1 CSV export of the portal's
-- other datasets (`;`, UTF-8 with a BOM, a header of field names, fields
-- annee / region / departement as in "patients-longueduree-annuelle", the
-- ALD variant read by ameli_open_data); the two counts' field names are
-- guesses and are configurable: `field_without`, `field_total` (and
-- `age_field`/`age_value` if the dataset has rows by age class: only the
-- rows whose age_field equals age_value are read). A field missing from
-- the header stops the run with its name, so a wrong guess is an error,
-- never zeros. The test reads a fixture written in this format
-- (tests/fixtures/plugins/ameli/patients-sans-medecin-traitant.csv).
--
-- Only département rows are written: région ("999") and France ("99")
-- rows are skipped (counted in the log), since a published total next to
-- its départements would let the engine mix members and totals; the
-- engine sums the départements, and a suppressed one (`NS`, empty) makes
-- the région `partial` instead of a silent undercount.
-- No schedule: run on demand once the network is available; `url` may be
-- a local file.
local ameli = require "ameli"

local SOURCE = "Assurance Maladie, data.ameli.fr — Observatoire de l'accès aux soins, "
  .. "patients de 17 ans et plus sans médecin traitant (jeu de données non vérifié hors ligne)"
local LICENCE = "Licence Ouverte 2.0 — Source : Assurance Maladie (data.ameli.fr)"

return {
  name = "ameli_no_mt",
  description = "Patients de 17 ans et plus sans médecin traitant, et patients de 17 ans et plus, "
    .. "par département et année (Assurance Maladie, data.ameli.fr)",
  indicators = {
    patients_17p_without_mt = {
      label = "Patients de 17 ans et plus sans médecin traitant", unit = "patients",
      aggregate = "sum", source = SOURCE, licence = LICENCE, periodicity = "year", decimals = 0,
      description = "Patients de 17 ans et plus consommant des soins, sans médecin traitant "
        .. "déclaré, par département de résidence. Numérateur de no_mt_share.",
    },
    patients_17p = {
      label = "Patients de 17 ans et plus", unit = "patients",
      aggregate = "sum", source = SOURCE, licence = LICENCE, periodicity = "year", decimals = 0,
      description = "Patients de 17 ans et plus consommant des soins, par département de "
        .. "résidence. Dénominateur de no_mt_share.",
    },
  },
  config = {
    url = "https://data.ameli.fr/api/explore/v2.1/catalog/datasets/patients-sans-medecin-traitant/"
      .. "exports/csv?delimiter=%3B&with_bom=true",
    field_without = "nb_patients_sans_mt",
    field_total = "nb_patients",
    age_field = "",
    age_value = "",
  },
  timeout = "30m",
  memory = "256M",
  run = function(ctx)
    local cfg = ctx.config
    local fields = { "annee", "region", "departement", cfg.field_without, cfg.field_total }
    if cfg.age_field ~= "" then fields[#fields + 1] = cfg.age_field end
    local src = ctx:fetch(cfg.url)
    local n, kept, totals = 0, 0, 0
    for row, line in ctx:csv(src, { sep = ";" }) do
      local where = ("%s:%d"):format(src.name, line)
      if n == 0 then ameli.check_fields(row, fields, where) end
      n = n + 1
      if cfg.age_field == "" or row[cfg.age_field] == cfg.age_value then
        local year = row.annee:match("^(%d%d%d%d)")
        if not year then
          error(("%s: annee '%s' is not a date"):format(where, row.annee))
        end
        local terr = ameli.territory(row.departement, row.region)
        if not terr then
          ctx:reject(("%s: territory departement '%s' region '%s' unknown")
            :format(where, row.departement, row.region))
        elseif not terr:match("^dep:") then
          totals = totals + 1
        else
          -- "NS", "" -> suppressed (ctx:put reads them); "NC" too.
          local without, total = row[cfg.field_without], row[cfg.field_total]
          if without == "NC" then without = "" end
          if total == "NC" then total = "" end
          ctx:put("patients_17p_without_mt", terr, year, without)
          ctx:put("patients_17p", terr, year, total)
          kept = kept + 1
        end
      end
      if n % 50000 == 0 then ctx:progress(n) end
    end
    ctx:log("info", ("%d records read, %d départements-years written, %d région/France "
      .. "totals skipped (computed from the départements)"):format(n, kept, totals))
    ctx:progress(n, n)
  end,
}
