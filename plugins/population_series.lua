-- Populations légales by commune for several census millésimes, from the
-- yearly versions of the npm data package @etalab/decoupage-administratif
-- (data/communes.json, field `population`), installed side by side by
-- package.json under aliases (node_modules/ must be a fetch root:
-- `--fetch-root node_modules` for vigied, `--root node_modules` for
-- `vigie plugin run`).
--
-- What each version carries was checked against INSEE
-- (scripts/check_decoupage_populations.py, figures in docs/indicators.md):
--   2.3.1 (COG 2022): populations de référence 2020, 34 980 communes
--   4.0.0 (COG 2024): populations de référence 2021 (3 communes of 2024
--                     without a value: the package joined 2021 figures,
--                     published in the COG 2023, on COG 2024 codes)
--   4.1.0 (COG 2024): populations de référence 2022, equal commune by
--                     commune to INSEE's population municipale
--   5.3.0 (COG 2025): populations de référence 2023
-- 3.x (COG 2023) and 5.0.x (COG 2025) repeat the previous millésime and
-- are not used. The figure is the population municipale, so this is the
-- indicator `population` of insee_population (same definition, shared in
-- plugins/lib/insee.lua); the period is the census reference year.
--
-- Codes are written as published. Codes of an older geography that the
-- store knows as old codes (the passage table) are counted by the engine
-- in the communes that replaced them. A code the geography does not know
-- at all (a commune absorbed without becoming a commune déléguée) is
-- added to the commune that a newer version lists it under
-- (`anciensCodes`), which is what the passage table would do; each such
-- fold is logged. Paris, Lyon and Marseille go by arrondissement municipal
-- (as INSEE publishes them); collectivités d'outre-mer are not communes
-- of the COG, and Mayotte's figures are the 2017 census in every version:
-- both are rejected (counted in the vintage).
local insee = require "insee"

local PLM = { ["75056"] = true, ["69123"] = true, ["13055"] = true }

-- "2020=decoupage-pop2020@2.3.1,..." -> sorted list, newest first.
local function parse_versions(text)
  local out, seen = {}, {}
  for item in text:gmatch("[^,]+") do
    local year, dir, ver = item:match("^%s*(%d%d%d%d)=(.+)@([%d.]+)%s*$")
    if not year then
      error(("config 'versions': '%s' is not YEAR=PACKAGE_DIR@VERSION"):format(item), 2)
    end
    if seen[year] then
      error(("config 'versions': millésime %s given twice"):format(year), 2)
    end
    seen[year] = true
    out[#out + 1] = { year = year, dir = dir, version = ver }
  end
  if #out == 0 then error("config 'versions' is empty", 2) end
  table.sort(out, function(a, b) return a.year > b.year end)
  return out
end

return {
  name = "population_series",
  description = "Populations légales (population municipale) des communes, plusieurs "
    .. "millésimes, depuis les versions annuelles de @etalab/decoupage-administratif",
  indicators = { population = insee.POPULATION },
  after = { "cog" },
  config = {
    -- millésime (census reference year) = package directory under a fetch
    -- root @ the version it must be (a different version stops the run:
    -- the millésime of each version was checked, not guessed).
    versions = "2020=decoupage-pop2020@2.3.1,2021=decoupage-pop2021@4.0.0,"
      .. "2022=@etalab/decoupage-administratif@4.1.0,2023=decoupage-pop2023@5.3.0",
  },
  timeout = "10m",
  memory = "1G",
  run = function(ctx)
    local versions = parse_versions(ctx.config.versions)
    -- old code -> code of the commune that absorbed it, from the newest
    -- version listing it (versions are read newest first).
    local absorbed = {}
    for vi, v in ipairs(versions) do
      local meta = ctx:json(v.dir .. "/package.json")
      if meta.version ~= v.version then
        error(("%s/package.json: version %s, expected %s for millésime %s "
          .. "(see scripts/check_decoupage_populations.py)")
          :format(v.dir, tostring(meta.version), v.version, v.year))
      end
      local src = ctx:fetch(v.dir .. "/data/communes.json")
      local communes = ctx:json(src)
      local rows, current = {}, {}
      for i, c in ipairs(communes) do
        local where = ("%s[%d] (%s %s)"):format(src.name, i, tostring(c.code), tostring(c.nom))
        if c.type == "commune-actuelle" or c.type == "arrondissement-municipal" then
          if type(c.code) ~= "string" or not c.code:match("^%d[%dAB]%d%d%d$") then
            error(("%s: code is not a commune code"):format(where))
          end
          current[c.code] = true
          if type(c.anciensCodes) == "table" then
            for _, old in ipairs(c.anciensCodes) do
              if not absorbed[old] then absorbed[old] = c.code end
            end
          end
          if PLM[c.code] then
            -- counted by arrondissement
          elseif c.zone == "com" then
            ctx:reject(("%s: collectivité d'outre-mer, not a commune of the COG"):format(where))
          elseif c.departement == "976" then
            ctx:reject(("%s: Mayotte's figures are the 2017 census, not %s"):format(where, v.year))
          elseif c.population == nil or c.population == ctx.null then
            ctx:reject(("%s: no population in version %s"):format(where, v.version))
          elseif math.type(c.population) ~= "integer" or c.population < 0 then
            error(("%s: population %s is not a count"):format(where, tostring(c.population)))
          else
            local lvl = c.type == "arrondissement-municipal" and "arm:" or "com:"
            rows[#rows + 1] = { code = c.code, terr = lvl .. c.code, value = c.population }
          end
        end
      end
      communes = nil -- the parsed file is the bulk of the heap
      collectgarbage()

      -- Codes another version lists as old ones first: the store knows
      -- them (old code or re-created commune) or they are folded.
      local fold, folded, later, written = {}, 0, {}, {}
      for _, r in ipairs(rows) do
        local succ = absorbed[r.code]
        if succ and succ ~= r.code then
          -- ctx:territory: known to the store (an old code of the
          -- passage table, or a re-created commune), else folded.
          if ctx:territory(r.terr) then
            ctx:put("population", r.terr, v.year, r.value)
            written[r.code] = true
          else
            if succ:sub(1, 2) ~= r.code:sub(1, 2) then
              error(("%s %s: unknown to the geography and its successor %s is in "
                .. "another département"):format(src.name, r.code, succ))
            end
            fold[succ] = (fold[succ] or 0) + r.value
            folded = folded + 1
            ctx:log("info", ("%s %s: %s (population %d) is not in the geography: "
              .. "counted in com:%s, which lists it as an old code")
              :format(v.year, src.name, r.terr, r.value, succ))
          end
        else
          later[#later + 1] = r
        end
      end
      for _, r in ipairs(later) do
        ctx:put("population", r.terr, v.year, r.value + (fold[r.code] or 0))
        fold[r.code] = nil
      end
      -- A successor with no row of its own in this version (its code is
      -- newer than the version's geography).
      for succ, value in pairs(fold) do
        if written[succ] then
          error(("%s: com:%s both has a value and absorbs codes unknown to the "
            .. "geography: the fold would be lost"):format(src.name, succ))
        end
        ctx:put("population", "com:" .. succ, v.year, value)
      end
      ctx:log("info", ("%s: millésime %s, %d communes and arrondissements, %d folded "
        .. "(version %s)"):format(src.name, v.year, #rows, folded, v.version))
      ctx:progress(vi, #versions)
    end
  end,
}
