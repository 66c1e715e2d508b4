-- Assurance Maladie open data (data.ameli.fr, an Opendatasoft portal):
-- liberal GPs by département and year, from the dataset
-- "demographie-effectifs-et-les-densites" ("Professionnels de santé
-- libéraux : effectif et densité par tranche d'âge, sexe et territoire"),
-- read as the CSV export of the Explore API v2.1:
--   <portal>/api/explore/v2.1/catalog/datasets/<id>/exports/csv
-- which writes `;`-separated UTF-8 with a BOM (`with_bom=true`), a header
-- of field names (not labels) and one row per record. The fields used:
--   annee (a date field: "2024" or "2024-01-01"), profession_sante,
--   region, departement ("01".."95", "2A", "971"...; "999" is all
--   départements, with region "99" for France entière), libelle_classe_age
--   ("Tout âge" is the total), libelle_sexe ("tout sexe"), effectif,
--   densite (per 100 000 inhabitants, INSEE estimates as denominator).
-- Other fields are ignored; a missing one stops the run with its name.
-- Second dataset (config `ald_url`): "patients-longueduree-annuelle",
-- the share of ALD patients without a médecin traitant, published as a
-- rate only (aggregate `none`).
--
-- Liberal GPs (Assurance Maladie) and all GPs (RPPS/DREES) are two
-- official families that differ by about 2x: separate indicators, never
-- mixed (gp_density_liberal vs gp_density_rpps in health_densities).
-- `NS` and empty values are secret statistique: `suppressed`.
--
-- No copy of the export is bundled; the test uses a fixture in this exact
-- format (tests/fixtures/plugins/ameli/). No schedule: run on demand (or
-- give one) once the network is available; `url` may be a local file.
local SOURCE = "Assurance Maladie, data.ameli.fr — Démographie des professionnels de santé libéraux"
local LICENCE = "Licence Ouverte 2.0 — Source : Assurance Maladie (data.ameli.fr)"

local REQUIRED = { "annee", "profession_sante", "region", "departement",
                   "libelle_classe_age", "libelle_sexe", "effectif", "densite" }

local ameli = require "ameli"
local territory, check_fields = ameli.territory, ameli.check_fields

-- Fields of the export of "patients-longueduree-annuelle" (patients en
-- ALD, by département and year): the rate comes as French text
-- (`taux_patients_ald_sans_mt`, "12,3"; "NC" when not published) and as
-- a parsed number (`taux_patients_ald_sans_mt_integer`, despite its name).
local ALD_REQUIRED = { "annee", "region", "departement", "taux_patients_ald_sans_mt" }

local function read_ald(ctx)
  local src = ctx:fetch(ctx.config.ald_url)
  local n = 0
  for row, line in ctx:csv(src, { sep = ";" }) do
    local where = ("%s:%d"):format(src.name, line)
    if n == 0 then check_fields(row, ALD_REQUIRED, where) end
    n = n + 1
    local year = row.annee:match("^(%d%d%d%d)")
    if not year then error(("%s: annee '%s' is not a date"):format(where, row.annee)) end
    local terr = territory(row.departement, row.region)
    if not terr then
      ctx:reject(("%s: territory departement '%s' region '%s' unknown")
        :format(where, row.departement, row.region))
    else
      local v = row.taux_patients_ald_sans_mt
      if v == "NC" or v == "NS" or v == "" then
        ctx:put("ald_no_mt_share_pub", terr, year, nil, "suppressed")
      else
        ctx:put("ald_no_mt_share_pub", terr, year, v)
      end
    end
  end
  return n
end

return {
  name = "ameli_open_data",
  description = "Médecins généralistes libéraux par département et année (Assurance Maladie, data.ameli.fr)",
  indicators = {
    gp_liberal_count = {
      label = "Médecins généralistes libéraux (effectif)", unit = "médecins", aggregate = "sum",
      source = SOURCE, licence = LICENCE, periodicity = "year", decimals = 0,
      description = "Médecins généralistes ayant une activité libérale (hors médecins à expertise particulière).",
    },
    ald_no_mt_share_pub = {
      label = "Part des patients en ALD sans médecin traitant (publiée)", unit = "%",
      aggregate = "none", source = "Assurance Maladie, data.ameli.fr — patients en ALD (annuel)",
      licence = LICENCE, periodicity = "year", decimals = 1,
      description = "Patients en affection de longue durée sans médecin traitant déclaré / patients en ALD. "
        .. "Publié sans numérateur ni dénominateur : jamais agrégé.",
    },
    gp_liberal_density_pub = {
      label = "Densité de médecins généralistes libéraux (publiée, Assurance Maladie)",
      unit = "pour 100 000 habitants", aggregate = "none",
      source = SOURCE, licence = LICENCE, periodicity = "year", decimals = 1,
      description = "Valeur publiée ; jamais agrégée (voir gp_density_liberal pour un ratio de sommes).",
    },
  },
  config = {
    -- "" skips the ALD dataset
    ald_url = "https://data.ameli.fr/api/explore/v2.1/catalog/datasets/patients-longueduree-annuelle/exports/csv"
      .. "?delimiter=%3B&with_bom=true",
    url = "https://data.ameli.fr/api/explore/v2.1/catalog/datasets/demographie-effectifs-et-les-densites/exports/csv"
      .. "?delimiter=%3B&with_bom=true&refine=libelle_classe_age%3ATout%20%C3%A2ge"
      .. "&refine=libelle_sexe%3Atout%20sexe",
    profession = "Médecins généralistes (hors médecins à expertise particulière - MEP)",
    -- Years before this are ignored ("" or 0: all).
    from_year = 0,
  },
  timeout = "30m",
  memory = "512M",
  run = function(ctx)
    local src = ctx:fetch(ctx.config.url)
    local n, kept = 0, 0
    for row, line in ctx:csv(src, { sep = ";" }) do
      local where = ("%s:%d"):format(src.name, line)
      if n == 0 then check_fields(row, REQUIRED, where) end
      n = n + 1
      if row.profession_sante == ctx.config.profession
         and row.libelle_classe_age == "Tout âge"
         and row.libelle_sexe:lower() == "tout sexe" then
        local year = row.annee:match("^(%d%d%d%d)")
        if not year then
          error(("%s: annee '%s' is not a date"):format(where, row.annee))
        end
        if tonumber(year) >= (tonumber(ctx.config.from_year) or 0) then
          local terr = territory(row.departement, row.region)
          if terr then
            -- "NS", "" -> suppressed (ctx:put reads them)
            ctx:put("gp_liberal_count", terr, year, row.effectif)
            ctx:put("gp_liberal_density_pub", terr, year, row.densite)
            kept = kept + 1
          else
            ctx:reject(("%s: territory departement '%s' region '%s' unknown")
              :format(where, row.departement, row.region))
          end
        end
      end
      if n % 50000 == 0 then ctx:progress(n) end
    end
    ctx:log("info", ("%d records read, %d kept for %s"):format(n, kept, ctx.config.profession))
    if ctx.config.ald_url ~= "" then
      ctx:log("info", ("%d ALD records read"):format(read_ald(ctx)))
    end
    ctx:progress(n, n)
  end,
}
