-- General practitioners by commune from the Annuaire Santé / RPPS open
-- extract (ANS, "Extraction correspondance PS_LibreAcces"): the file
-- PS_LibreAcces_Personne_activite_<date>.txt, `|`-separated with a
-- trailing `|` on every line, UTF-8, one row per activity of a
-- practitioner at a practice site (structure).
--
-- A GP is Code profession 10 (Médecin) with a savoir-faire of general
-- medicine (config `savoir_faire`: SM54 Médecine générale, SM53
-- Spécialiste en médecine générale, SM26 Qualifié en médecine générale).
-- All modes of practice (libéral, salarié, bénévole) are kept unless
-- `modes` lists some (e.g. "L"): this is the "all GPs" family, never
-- mixed with the Assurance Maladie liberal GPs.
--
-- Several sites: a doctor practising at n distinct sites (distinct
-- structure identifiers, or communes when the structure is not given)
-- counts 1/n at each. The count stays additive: every doctor adds up to
-- exactly 1 at any level that holds all their sites, and is split
-- between territories otherwise (a doctor with sites in Vendée and in
-- Loire-Atlantique counts 0.5 in each, 1 in Pays de la Loire). Rows with
-- no commune are not counted in n (the doctor's weight goes to the sites
-- that are located); a GP with no located site is rejected (logged).
-- Paris, Lyon and Marseille sites are given by arrondissement (arm:).
local SOURCE = "Annuaire Santé (ANS), extraction RPPS PS_LibreAcces_Personne_activite"
local LICENCE = "Licence Ouverte 2.0 — Source : Agence du numérique en santé, RPPS"

local COL = {
  id = "Identification nationale PP",
  profession = "Code profession",
  sf = "Code savoir-faire",
  mode = "Code mode exercice",
  structure = "Identifiant technique de la structure",
  commune = "Code commune (coord. structure)",
}

local function set_of(list)
  local s = {}
  for x in list:gmatch("[^,%s]+") do s[x] = true end
  return s
end

local function arm(code)
  return code:sub(1, 3) == "751" or (code >= "69381" and code <= "69389")
    or (code >= "13201" and code <= "13216")
end

return {
  name = "rpps_gp",
  description = "Médecins généralistes (tous modes d'exercice) par commune, Annuaire Santé / RPPS",
  indicators = {
    gp_count_rpps = {
      label = "Médecins généralistes (RPPS, tous modes d'exercice)", unit = "médecins",
      aggregate = "sum", source = SOURCE, licence = LICENCE, periodicity = "year", decimals = 1,
      description = "Médecins (profession 10) de savoir-faire médecine générale ; un médecin "
        .. "exerçant sur n sites compte 1/n sur chacun (somme = effectif).",
    },
  },
  config = {
    source = "PS_LibreAcces_Personne_activite.txt",
    period = "2025",
    savoir_faire = "SM54,SM53,SM26",
    modes = "",
    -- communes that get 0 when no GP practises there: those with a value
    -- of this indicator for this period ("" : no zero fill)
    zero_fill_from = "population",
    zero_fill_period = "2022",
  },
  timeout = "30m",
  memory = "1G",
  run = function(ctx)
    local sf, modes = set_of(ctx.config.savoir_faire), set_of(ctx.config.modes)
    local any_mode = next(modes) == nil
    local src = ctx:fetch(ctx.config.source)
    -- doctor id -> { sites = {key -> commune}, n = count }
    local docs, order, rows, unlocated = {}, {}, 0, {}
    for row, line in ctx:csv(src, { sep = "|" }) do
      rows = rows + 1
      if rows == 1 then
        for _, k in pairs(COL) do
          if row[k] == nil then
            error(("%s:%d: column '%s' missing"):format(src.name, line, k))
          end
        end
      end
      if row[COL.profession] == "10" and sf[row[COL.sf]]
         and (any_mode or modes[row[COL.mode]]) then
        local id = row[COL.id]
        if id == "" then
          error(("%s:%d: a GP row without Identification nationale PP"):format(src.name, line))
        end
        local d = docs[id]
        if not d then
          d = { sites = {}, n = 0, line = line }
          docs[id] = d
          order[#order + 1] = id
        end
        local com = row[COL.commune]
        if com:match("^%w%w%w%w%w$") then
          local key = row[COL.structure] ~= "" and row[COL.structure] or ("com:" .. com)
          if not d.sites[key] then
            d.sites[key] = com
            d.n = d.n + 1
          end
        else
          unlocated[id] = line
        end
      end
    end
    local by_terr, terr_order, counted = {}, {}, 0
    for _, id in ipairs(order) do
      local d = docs[id]
      if d.n == 0 then
        ctx:reject(("%s:%d: GP %s has no practice site with a commune code")
          :format(src.name, unlocated[id] or d.line, id))
      else
        counted = counted + 1
        for _, com in pairs(d.sites) do
          local terr = (arm(com) and "arm:" or "com:") .. com
          if not by_terr[terr] then
            by_terr[terr] = 0
            terr_order[#terr_order + 1] = terr
          end
          by_terr[terr] = by_terr[terr] + 1 / d.n
        end
      end
    end
    table.sort(terr_order)
    for _, terr in ipairs(terr_order) do
      ctx:put("gp_count_rpps", terr, ctx.config.period, by_terr[terr])
    end
    -- A commune with no GP is 0, not missing: a ratio pairs numerator and
    -- denominator member by member, so a missing 0 would drop the
    -- commune's population from every density above it. The communes are
    -- those where `zero_fill_from` has a value (committed data).
    local zeros = 0
    if ctx.config.zero_fill_from ~= "" then
      for _, level in ipairs({ "com", "arm" }) do
        local list, why = ctx:slice(ctx.config.zero_fill_from, ctx.config.zero_fill_period, level)
        if not list then
          ctx:log("warn", ("no zero fill from %s %s: %s (communes without GP stay missing)")
            :format(ctx.config.zero_fill_from, ctx.config.zero_fill_period, tostring(why)))
          break
        end
        for _, pt in ipairs(list) do
          if not by_terr[pt.territory] then
            ctx:put("gp_count_rpps", pt.territory, ctx.config.period, 0)
            zeros = zeros + 1
          end
        end
      end
    end
    ctx:log("info", ("%d rows, %d GPs counted at %d sites' communes, %d communes without GP")
      :format(rows, counted, #terr_order, zeros))
  end,
}
