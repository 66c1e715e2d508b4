-- Health professionals by département and région: INSEE key-figures
-- table TCRD_068 ("Professionnels de santé au 1er janvier YYYY :
-- comparaisons départementales / régionales"), DREES RPPS data.
--
-- Stored as published: the physician headcount (a count, summed above
-- the département) and the published densities per 100 000 inhabitants
-- (rounded to integers by the producer: aggregate `none`, never
-- recomputed from other densities). The densities' denominator is the
-- INSEE population estimate at 1 January (plugin insee_estimations), so
-- `physician_density` = ratio(physicians, population_estimee, 1e5)
-- (declared by the plugin health_densities) recomputes them at any scale.
--
-- Layout of each sheet (whole-sheet dump): a title with the date, two
-- header rows (Effectifs | Densité pour 100 000 habitants; Ensemble des
-- médecins | Ensemble des médecins, dont généralistes, dont spécialistes,
-- Chirurg. dentistes, Pharm.), one row per territory, and notes. Rows
-- whose code is P, M, F are "France métropolitaine hors Île-de-France",
-- "France métropolitaine" and "France": they go on the perimeters
-- zone:metro-hors-idf and zone:france-metropolitaine, and on `fr`. They
-- appear in both sheets, with the same values (checked).
local insee = require "insee"

local SOURCE = "DREES, RPPS (traitements DREES) ; Insee, estimations de population — TCRD_068"
local LICENCE = "Licence Ouverte 2.0 — Source : DREES, Insee"

local HORS_IDF = "zone:metro-hors-idf"
local IDF = { ["75"] = 1, ["77"] = 1, ["78"] = 1, ["91"] = 1, ["92"] = 1,
              ["93"] = 1, ["94"] = 1, ["95"] = 1 }
local AGG = { P = HORS_IDF, M = insee.METRO, F = "fr" }
local REGIONS = { ["01"] = 1, ["02"] = 1, ["03"] = 1, ["04"] = 1, ["06"] = 1,
                  ["11"] = 1, ["24"] = 1, ["27"] = 1, ["28"] = 1, ["32"] = 1,
                  ["44"] = 1, ["52"] = 1, ["53"] = 1, ["75"] = 1, ["76"] = 1,
                  ["84"] = 1, ["93"] = 1, ["94"] = 1 }

-- Columns 3..8 and the indicator each one feeds.
local COLUMNS = { "physicians", "physicians_density_pub", "gp_density_pub",
                  "specialists_density_pub", "dentists_density_pub",
                  "pharmacists_density_pub" }
local HEADER = { "Ensemble des médecins", "Ensemble des médecins", "dont généralistes",
                 "dont spécialistes", "Chirurg. dentistes", "Pharm." }

-- A published cell: a number, or the producer's marks. "nd" (non
-- disponible) and "-" are missing; "", "s" and "NS" suppressed (ctx:put
-- reads those itself, but the status is set here to be explicit).
local function cell(s)
  local t = (s or ""):match("^%s*(.-)%s*$")
  if t == "" or t == "s" or t == "NS" or t == "ns" then return nil, "suppressed" end
  if t == "nd" or t == "ND" or t == "n.d." or t == "-" then return nil, "missing" end
  return t, "ok"
end

local function density(name, label)
  return { label = label, unit = "pour 100 000 habitants", aggregate = "none",
           source = SOURCE, licence = LICENCE, periodicity = "year", decimals = 0,
           description = "Valeur publiée (arrondie à l'unité), dénominateur : estimation de "
             .. "population au 1er janvier ; jamais recalculée ni agrégée." }
end

local function read_sheet(ctx, path, level, seen)
  local src = ctx:fetch(path)
  local period = ctx.config.period
  local n = 0
  for row, line in ctx:csv(src, { sep = ";", header = false }) do
    local where = ("%s:%d"):format(src.name, line)
    local code = (row[1] or ""):match("^%s*(.-)%s*$")
    if line == 1 then
      if not row[1]:find("1ᵉʳ janvier " .. period, 1, true)
         and not row[1]:find("1er janvier " .. period, 1, true) then
        error(("%s: title '%s' is not for 1 January %s (config period)"):format(where, row[1], period))
      end
    elseif line == 3 then
      for i, h in ipairs(HEADER) do
        if row[i + 2] ~= h then
          error(("%s: column %d is '%s', expected '%s'"):format(where, i + 2, tostring(row[i + 2]), h))
        end
      end
    elseif line > 3 and code ~= "" and (row[3] or "") ~= "" then
      local terr
      if AGG[code] then
        terr = AGG[code]
      elseif level == "dep" and insee.dep_code(code) then
        terr = "dep:" .. code
      elseif level == "reg" and REGIONS[code] then
        terr = "reg:" .. code
      end
      if not terr then
        ctx:reject(("%s: unknown %s code '%s'"):format(where, level, code))
      else
        for i, ind in ipairs(COLUMNS) do
          local v, st = cell(row[i + 2])
          local key = ind .. " " .. terr
          if seen[key] then
            if seen[key] ~= (v or st) then
              error(("%s: %s at %s is '%s' here but '%s' in the other sheet")
                :format(where, ind, terr, v or st, seen[key]))
            end
          else
            seen[key] = v or st
            ctx:put(ind, terr, period, v, st)
          end
        end
        n = n + 1
      end
    end
  end
  return n
end

return {
  name = "drees_physicians",
  description = "Médecins (effectifs) et densités publiées par département et région (DREES, TCRD_068)",
  schedule = "0 5 * * 1",
  -- Its territories come from cog: it reruns when cog commits a new
  -- geography (on a fresh store, once cog has defined them).
  after = { "cog" },
  indicators = {
    physicians = {
      label = "Médecins (ensemble, effectif)", unit = "médecins", aggregate = "sum",
      source = SOURCE, licence = LICENCE, periodicity = "year", decimals = 0,
      description = "Médecins en activité au 1er janvier (RPPS), généralistes et spécialistes.",
    },
    physicians_density_pub = density("physicians_density_pub",
      "Densité de médecins (publiée)"),
    gp_density_pub = density("gp_density_pub",
      "Densité de médecins généralistes, tous modes d'exercice (publiée, DREES)"),
    specialists_density_pub = density("specialists_density_pub",
      "Densité de médecins spécialistes (publiée)"),
    dentists_density_pub = density("dentists_density_pub",
      "Densité de chirurgiens-dentistes (publiée)"),
    pharmacists_density_pub = density("pharmacists_density_pub",
      "Densité de pharmaciens (publiée)"),
  },
  config = {
    dep = "data/health/TCRD_068~DEP.csv",
    reg = "data/health/TCRD_068~REG.csv",
    period = "2025",
  },
  timeout = "2m",
  memory = "64M",
  run = function(ctx)
    insee.define_zones(ctx)
    local members = {}
    for _, d in ipairs(insee.metro_departements()) do
      if not IDF[d:sub(5)] then members[#members + 1] = d end
    end
    ctx:define_territory{ code = HORS_IDF, name = "France métropolitaine hors Île-de-France",
                          parents = { "fr" }, members = members }
    local seen = {}
    local d = read_sheet(ctx, ctx.config.dep, "dep", seen)
    local r = read_sheet(ctx, ctx.config.reg, "reg", seen)
    ctx:log("info", ("%d département rows, %d région rows"):format(d, r))
  end,
}
