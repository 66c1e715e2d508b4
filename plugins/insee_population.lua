-- INSEE populations légales (populations de référence) by commune.
--
-- The worked example of docs/plugin-api.md, and a test fixture: its
-- output must equal tests/fixtures/real/population_2022.csv, made from
-- the same file by scripts/popref_to_points.py.
local insee = require "insee"

return {
  name = "insee_population",
  description = "Population municipale et totale des communes (INSEE, recensement)",
  schedule = "0 4 * * 1",
  -- Its territories come from cog: it reruns when cog commits a new
  -- geography (on a fresh store, once cog has defined them).
  after = { "cog" },
  indicators = {
    -- shared with population_series (plugins/lib/insee.lua)
    population = insee.POPULATION,
    population_totale = {
      label = "Population totale", unit = "habitants",
      -- Population comptée à part may be counted in two communes: never
      -- summed, only published values.
      aggregate = "none",
      source = "Insee, recensement de la population (populations de référence 2022)",
      licence = "Licence Ouverte 2.0 — Source : Insee",
      periodicity = "year", decimals = 0,
    },
  },
  config = {
    source = "population/popref2025_rp2022/ensemble~Communes.csv",
    period = "2022",
  },
  timeout = "10m",
  memory = "256M",
  run = function(ctx)
    local period = ctx.config.period
    local src = ctx:fetch(ctx.config.source)
    local done = 0
    for row, line in ctx:csv(src, { sep = ";", header = true }) do
      local terr = insee.territory(row["Code département"], row["Code commune"])
      if terr then
        -- Values go in as text: "12,5", "NS" or "" are understood, and a
        -- non-number stops the run instead of becoming nil.
        ctx:put("population", terr, period, row["Population municipale"])
        ctx:put("population_totale", terr, period, row["Population totale"])
      else
        ctx:reject(("line %d: collectivité d'outre-mer %s%s is not in the COG")
          :format(line, row["Code département"], row["Code commune"]))
      end
      done = done + 1
      if done % 5000 == 0 then ctx:progress(done, 34964) end
    end
    ctx:progress(done, done)
    ctx:log("info", ("%d rows read from %s"):format(done, src.name))
  end,
}
