-- INSEE population estimates at 1 January by département and age group
-- ("Estimation de population au 1er janvier, par département, sexe et
-- grande classe d'âge"), one sheet per year extracted to CSV.
--
-- These are not the populations légales (plugin insee_population): they
-- are the denominators of the published densities (DREES/INSEE TCRD_068)
-- and exist for every year up to 1 January of the current year. So they
-- are separate indicators, never mixed with `population`.
--
-- Layout of a year sheet (whole-sheet dump): a title, "Année YYYY", a
-- blank line, a 2-row header (Ensemble / Hommes / Femmes x 0-19, 20-39,
-- 40-59, 60-74, 75+, Total), one row per département (`code;name;...`),
-- then the aggregates "France métropolitaine " (after 95), "DOM" and
-- "France métropolitaine et DOM", and a source line that says whether
-- the year is définitif, provisoire or précoce.
--
-- Mapping of the aggregates: "France métropolitaine et DOM" is `fr`;
-- "France métropolitaine" and "DOM" go on the perimeters
-- zone:france-metropolitaine and zone:drom this plugin defines (members:
-- their départements). Each aggregate is checked against the sum of its
-- départements: a difference stops the run.
local insee = require "insee"

local SOURCE = "Insee, estimations de population au 1er janvier (par département, sexe et âge)"
local LICENCE = "Licence Ouverte 2.0 — Source : Insee"

-- Columns (1-based) of the "Ensemble" block.
local COL_75P, COL_TOTAL = 7, 8

local AGGREGATES = {
  ["France métropolitaine"] = insee.METRO,
  ["DOM"] = insee.DROM,
  ["France métropolitaine et DOM"] = "fr",
}

-- The status of a year from the sheet's source line.
local function status_of(text)
  if text:find("définitifs", 1, true) then return "ok" end
  if text:find("provisoires", 1, true) or text:find("précoces", 1, true) then
    return "provisional"
  end
  return nil
end

local function int(ctx, s, where)
  local v = type(s) == "string" and s:match("^%s*(%d+)%s*$")
  if not v then
    error(("%s: expected a whole number of people, got '%s'"):format(where, tostring(s)), 2)
  end
  return tonumber(v)
end

local function read_year(ctx, year)
  local path = ctx.config.source:gsub("{year}", year)
  local src = ctx:fetch(path)
  local rows, aggs, status = {}, {}, nil
  local sum = { [insee.METRO] = { 0, 0 }, [insee.DROM] = { 0, 0 }, fr = { 0, 0 } }
  for row, line in ctx:csv(src, { sep = ";", header = false }) do
    local first = row[1] or ""
    local where = ("%s:%d"):format(src.name, line)
    if line == 2 then
      local y = first:match("^Année (%d%d%d%d)")
      if y ~= year then
        error(("%s: the sheet is for '%s', expected Année %s"):format(where, first, year))
      end
    end
    local dep = insee.dep_code(first)
    local agg = AGGREGATES[first:match("^%s*(.-)%s*$")]
    if dep and line > 5 then
      local r = { terr = "dep:" .. dep, total = int(ctx, row[COL_TOTAL], where),
                  p75 = int(ctx, row[COL_75P], where) }
      rows[#rows + 1] = r
      local zone = dep:sub(1, 2) == "97" and insee.DROM or insee.METRO
      for _, z in ipairs({ zone, "fr" }) do
        sum[z][1] = sum[z][1] + r.total
        sum[z][2] = sum[z][2] + r.p75
      end
    elseif agg then
      aggs[#aggs + 1] = { terr = agg, total = int(ctx, row[COL_TOTAL], where),
                          p75 = int(ctx, row[COL_75P], where), where = where }
    elseif first:find("^Source") then
      status = status_of(first)
      if not status then
        error(("%s: cannot tell définitif/provisoire from '%s'"):format(where, first))
      end
    end
  end
  if #rows ~= 101 then
    error(("%s: %d départements, expected 101"):format(src.name, #rows))
  end
  if #aggs ~= 3 then
    error(("%s: %d aggregate rows, expected 3 (France métropolitaine, DOM, France)"):format(src.name, #aggs))
  end
  if not status then error(("%s: no source line"):format(src.name)) end
  for _, a in ipairs(aggs) do
    local s = sum[a.terr]
    if s[1] ~= a.total or s[2] ~= a.p75 then
      error(("%s: %s is %d (75+: %d) but its départements add up to %d (75+: %d)")
        :format(a.where, a.terr, a.total, a.p75, s[1], s[2]))
    end
    rows[#rows + 1] = a
  end
  for _, r in ipairs(rows) do
    ctx:put("population_estimee", r.terr, year, r.total, status)
    ctx:put("pop_75p", r.terr, year, r.p75, status)
  end
  return #rows
end

return {
  name = "insee_estimations",
  description = "Estimations de population au 1er janvier par département et âge (INSEE)",
  schedule = "0 5 * * 1",
  -- Its territories come from cog: it reruns when cog commits a new
  -- geography (on a fresh store, once cog has defined them).
  after = { "cog" },
  indicators = {
    population_estimee = {
      label = "Population estimée au 1er janvier", unit = "habitants", aggregate = "sum",
      source = SOURCE, licence = LICENCE, periodicity = "year", decimals = 0,
      description = "Estimation de population au 1er janvier de l'année (dénominateur des densités publiées). "
        .. "Provisoire pour les années récentes.",
    },
    pop_75p = {
      label = "Population de 75 ans et plus (estimée)", unit = "habitants", aggregate = "sum",
      source = SOURCE, licence = LICENCE, periodicity = "year", decimals = 0,
    },
    pop_75p_share = {
      label = "Part des 75 ans et plus", unit = "%",
      aggregate = "ratio(pop_75p, population_estimee, 100)",
      source = SOURCE, licence = LICENCE, periodicity = "year", decimals = 1,
      description = "Population de 75 ans et plus / population estimée au 1er janvier × 100",
    },
  },
  config = {
    -- {year} is replaced by each year of `years`.
    source = "data/population/estimations/estim-pop-dep-sexe-gca-1975-2025~{year}.csv",
    years = "2022,2023,2024,2025",
  },
  timeout = "5m",
  memory = "128M",
  run = function(ctx)
    insee.define_zones(ctx)
    local n, years = 0, {}
    for y in ctx.config.years:gmatch("[^,%s]+") do
      if not y:match("^%d%d%d%d$") then
        error(("config years: '%s' is not a year"):format(y))
      end
      years[#years + 1] = y
    end
    for i, y in ipairs(years) do
      n = n + read_year(ctx, y)
      ctx:progress(i, #years)
    end
    ctx:log("info", ("%d territory-years read for %s"):format(n, ctx.config.years))
  end,
}
