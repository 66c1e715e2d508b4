-- Accessibilité potentielle localisée (APL) aux médecins généralistes by
-- commune (DREES). APL is an index per inhabitant (consultations
-- accessible per year per inhabitant): above the commune it is a mean
-- weighted by the population standardised by age-specific consumption of
-- care, the population DREES computes it on, never a plain mean. The
-- three age variants of the GPs (all, 65 and under, 62 and under) are
-- separate indicators with the same weight.
--
-- Under-supply: the share of the population living in a commune whose APL
-- is below the threshold (2.5 consultations, DREES's "zone sous-dense"
-- convention) is made additive: `pop_apl_under_2_5` holds the commune's
-- population when its APL is below the threshold, 0 otherwise, and the
-- share is ratio(pop_apl_under_2_5, apl_population, 100) over the same
-- file's population, so any perimeter gets the right share.
--
-- Geography: the file uses the communes of its year. Communes merged
-- since (old codes, absent from the current COG) are folded into their
-- commune nouvelle through the COG's communes déléguées / associées
-- (config `passage`): populations add up, APL is combined with the same
-- weighted mean the engine uses (sum(APL x w) / sum(w)), and the
-- under-threshold test is applied to each old commune before adding, so
-- every aggregate above is what it would be with the old communes. A
-- code neither in the COG nor in the passage table is rejected (logged).
-- Rows with no value at all (unpopulated villages near Verdun) are
-- `missing`.
local SOURCE = "DREES, accessibilité potentielle localisée (APL) aux médecins généralistes"
local LICENCE = "Licence Ouverte 2.0 — Source : DREES"

local COLS = {
  code = "Code commune",
  pop = "Population totale",
  apl = "APL aux médecins généralistes (sans borne d'âge)",
  apl65 = "APL aux médecins généralistes de 65 ans et moins",
  apl62 = "APL aux médecins généralistes de 62 ans et moins",
  std = "Population standardisée par la consommation de soins par tranche d'âge",
}

local function apl(label)
  return { label = label, unit = "consultations par an et par habitant",
           aggregate = "wmean(apl_pop_std)", source = SOURCE, licence = LICENCE,
           periodicity = "year", decimals = 1,
           description = "Moyenne pondérée par la population standardisée (apl_pop_std)." }
end

-- A number of the file ("2.15", "2,15"), or nil for an empty cell; any
-- other text stops the run with its place.
local function num(s, where, col)
  if type(s) == "number" then return s end
  if s == nil or s == "" then return nil end
  local v = tonumber((s:gsub(",", ".")))
  if not v then
    error(("%s: column '%s' is '%s', not a number"):format(where, col, s), 2)
  end
  return v
end

local function arm(code)
  return code:sub(1, 3) == "751" or (code >= "69381" and code <= "69389")
    or (code >= "13201" and code <= "13216")
end

return {
  name = "drees_apl",
  description = "APL aux médecins généralistes par commune et part de la population sous 2,5 (DREES)",
  schedule = "0 6 * * 1",
  -- Its territories come from cog: it reruns when cog commits a new
  -- geography (on a fresh store, once cog has defined them).
  after = { "cog" },
  indicators = {
    apl_mg = apl("APL aux médecins généralistes (sans borne d'âge)"),
    apl_mg_65 = apl("APL aux médecins généralistes de 65 ans et moins"),
    apl_mg_62 = apl("APL aux médecins généralistes de 62 ans et moins"),
    apl_pop_std = {
      label = "Population standardisée (APL)", unit = "habitants", aggregate = "sum",
      source = SOURCE, licence = LICENCE, periodicity = "year", decimals = 0,
      description = "Population standardisée par la consommation de soins par tranche d'âge : poids de l'APL.",
    },
    apl_population = {
      label = "Population (fichier APL)", unit = "habitants", aggregate = "sum",
      source = SOURCE, licence = LICENCE, periodicity = "year", decimals = 0,
      description = "Population totale des communes selon le fichier APL (dénominateur de la part sous-dotée).",
    },
    pop_apl_under_2_5 = {
      label = "Population des communes dont l'APL est inférieure à 2,5", unit = "habitants",
      aggregate = "sum", source = SOURCE, licence = LICENCE, periodicity = "year", decimals = 0,
    },
    apl_under_2_5_share = {
      label = "Part de la population vivant dans une commune sous-dotée (APL < 2,5)", unit = "%",
      aggregate = "ratio(pop_apl_under_2_5, apl_population, 100)",
      source = SOURCE, licence = LICENCE, periodicity = "year", decimals = 1,
    },
  },
  config = {
    source = "data/health/APL_mg_2021~Sheet1.csv",
    passage = "data/cog/communes_deleguees_associees_2024.csv",
    period = "2021",
    threshold = 2.5,
    -- Which APL the threshold applies to: apl (all GPs), apl65, apl62.
    threshold_on = "apl",
    -- for an .xlsx source: the sheet (name; "" = the first) and the rows
    -- above the header (DREES title block); for a CSV, lines skipped
    sheet = "",
    skip = 0,
  },
  timeout = "5m",
  memory = "256M",
  run = function(ctx)
    local cfg = ctx.config
    if not COLS[cfg.threshold_on] or cfg.threshold_on:sub(1, 3) ~= "apl" then
      error(("config threshold_on: '%s' is not apl, apl65 or apl62"):format(cfg.threshold_on))
    end
    local parent = {}
    for row in ctx:csv(ctx:fetch(cfg.passage), { sep = ";" }) do
      parent[row.COM] = row.COMPARENT
    end
    local src = ctx:fetch(cfg.source)
    -- The CSV extract, or the workbook itself (DREES publishes one sheet
    -- per year, with a title block above the header: `sheet`, `skip`).
    local rows
    if cfg.source:lower():match("%.xlsx$") then
      local sheet = cfg.sheet ~= "" and cfg.sheet or 1
      rows = ctx:xlsx(src, sheet, { skip = cfg.skip })
    else
      rows = ctx:csv(src, { sep = ";", skip = cfg.skip })
    end
    -- Communes in file order, each folding the rows mapped to it.
    local acc, order, n, merged = {}, {}, 0, 0
    for row, line in rows do
      local where = ("%s:%d"):format(src.name, line)
      local code = row[COLS.code]
      if type(code) == "number" then code = ("%05d"):format(code) end
      if not code or not code:match("^%w%w%w%w%w$") then
        error(("%s: '%s' is not a commune code"):format(where, tostring(code)))
      end
      local terr = (arm(code) and "arm:" or "com:") .. code
      local par = parent[code]
      if par and par ~= code then
        -- an old commune, now a commune déléguée / associée of par
        terr = "com:" .. par
        merged = merged + 1
      end
      if terr then
        local a = acc[terr]
        if not a then
          a = { terr = terr, pop = 0, std = 0, apl = 0, apl65 = 0, apl62 = 0,
                under = 0, rows = 0, empty = 0 }
          acc[terr] = a
          order[#order + 1] = a
        end
        a.rows = a.rows + 1
        local v = {}
        for _, k in ipairs({ "pop", "std", "apl", "apl65", "apl62" }) do
          v[k] = num(row[COLS[k]], where, COLS[k])
        end
        if v.pop == nil and v.std == nil and v.apl == nil then
          a.empty = a.empty + 1
        elseif v.pop == nil or v.std == nil or v.apl == nil or v.apl65 == nil or v.apl62 == nil then
          error(("%s: commune %s has some values and not others"):format(where, code))
        else
          a.pop, a.std = a.pop + v.pop, a.std + v.std
          for _, k in ipairs({ "apl", "apl65", "apl62" }) do
            a[k] = a[k] + v[k] * v.std
          end
          if v[cfg.threshold_on] < cfg.threshold then a.under = a.under + v.pop end
        end
      end
      n = n + 1
      if n % 5000 == 0 then ctx:progress(n, 34997) end
    end
    local p = cfg.period
    local written = 0
    for _, a in ipairs(order) do
      -- The first put tells whether the store knows the territory (the
      -- file may hold codes of communes merged without a commune
      -- déléguée): an unknown one is a rejected row, not a failed run.
      local ok, err
      if a.empty == a.rows then
        ok, err = pcall(ctx.put, ctx, "apl_population", a.terr, p, nil, "missing")
      else
        ok, err = pcall(ctx.put, ctx, "apl_population", a.terr, p, a.pop)
      end
      if not ok then
        if not tostring(err):find("unknown territory", 1, true) then error(err, 0) end
        ctx:reject(("%s: commune %s is neither in the COG nor in the passage table (%d row(s) dropped)")
          :format(src.name, a.terr, a.rows))
      elseif a.empty == a.rows then
        written = written + 1
        for _, ind in ipairs({ "apl_mg", "apl_mg_65", "apl_mg_62", "apl_pop_std",
                               "pop_apl_under_2_5" }) do
          ctx:put(ind, a.terr, p, nil, "missing")
        end
      else
        if a.std <= 0 then
          error(("%s: standardised population %g, cannot weight APL"):format(a.terr, a.std))
        end
        written = written + 1
        ctx:put("apl_mg", a.terr, p, a.apl / a.std)
        ctx:put("apl_mg_65", a.terr, p, a.apl65 / a.std)
        ctx:put("apl_mg_62", a.terr, p, a.apl62 / a.std)
        ctx:put("apl_pop_std", a.terr, p, a.std)
        ctx:put("pop_apl_under_2_5", a.terr, p, a.under)
      end
    end
    ctx:progress(n, n)
    ctx:log("info", ("%d rows, %d communes written, %d old communes folded into their commune nouvelle")
      :format(n, written, merged))
  end,
}
