-- Helpers for INSEE files, shared by plugins (require "insee").
local M = {}

-- Collectivités d'outre-mer: in INSEE population files, not in the COG
-- communes (so no territory to attach them to).
local COM = { ["975"] = true, ["977"] = true, ["978"] = true }

-- The canonical territory of a row of the populations légales files,
-- which split the commune code: département ("01", "2A", "971") and a
-- 3-character commune part ("001"). The INSEE code is the département
-- followed by it (01+001), for the DOM the first two characters of the
-- département (97+101). Paris, Lyon and Marseille come by arrondissement
-- municipal (751xx, 69381-69389, 13201-13216): those are `arm:` codes.
-- Returns nil for the collectivités d'outre-mer.
function M.territory(dep, com)
  if COM[dep] then return nil end
  local prefix = dep:sub(1, 2) == "97" and "97" or dep
  local code = prefix .. com
  local arm = (dep == "75" and code:sub(1, 3) == "751")
    or (code >= "69381" and code <= "69389")
    or (code >= "13201" and code <= "13216")
  return (arm and "arm:" or "com:") .. code
end

-- The 96 départements of France métropolitaine (01..95 without 20, with
-- 2A and 2B), as `dep:` codes, in INSEE order.
function M.metro_departements()
  local t = {}
  for i = 1, 95 do
    if i == 20 then
      t[#t + 1] = "dep:2A"
      t[#t + 1] = "dep:2B"
    else
      t[#t + 1] = ("dep:%02d"):format(i)
    end
  end
  return t
end

-- The perimeter "France métropolitaine": INSEE and DREES publish values
-- for it, and the COG has no such territory (`fr` is France entière,
-- DROM included). Its members are the 96 départements, so the engine
-- can also compute it from them. Codes of the DROM: 971..976.
M.METRO = "zone:france-metropolitaine"
M.DROM = "zone:drom"
function M.define_zones(ctx)
  ctx:define_territory{ code = M.METRO, name = "France métropolitaine",
                        parents = { "fr" }, members = M.metro_departements() }
  ctx:define_territory{ code = M.DROM, name = "Départements et régions d'outre-mer",
                        parents = { "fr" },
                        members = { "dep:971", "dep:972", "dep:973", "dep:974", "dep:976" } }
end

-- A département code of INSEE tables ("01", "2A", "971"), trailing
-- spaces removed, or nil when the cell is not one.
function M.dep_code(cell)
  if type(cell) ~= "string" then return nil end
  local c = cell:match("^%s*(.-)%s*$")
  if c:match("^%d%d$") or c:match("^2[AB]$") or c:match("^97[1-6]$") then
    return c
  end
  return nil
end

-- The indicator `population` (population municipale of a census
-- millésime, by commune), declared by insee_population (the INSEE file of
-- one millésime) and population_series (several millésimes from the
-- yearly versions of @etalab/decoupage-administratif): one definition, so
-- that neither plugin's run rewrites the other's metadata. The period is
-- the census reference year, not the year the figures came into force.
M.POPULATION = {
  label = "Population municipale", unit = "habitants", aggregate = "sum",
  description = "Population municipale des populations légales (recensement) ; "
    .. "période = année de référence du recensement (populations de référence N, "
    .. "en vigueur au 1er janvier N+3, publiées dans la géographie au 1er janvier N+2)",
  source = "Insee, recensement de la population (populations de référence)",
  licence = "Licence Ouverte 2.0 — Source : Insee",
  periodicity = "year", decimals = 0,
}

return M
