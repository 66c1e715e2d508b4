-- The French geography from the INSEE Code officiel géographique: France,
-- régions, départements, EPCI, communes and arrondissements municipaux,
-- with their parents (a commune: its EPCI, département and région; an
-- arrondissement: its commune, département and région), and the passage
-- table (old commune codes -> the commune that replaced them). Re-runnable
-- each year: point the config at the new vintage. `make run` loads the
-- geography with it, from the copies in plugins/data/.
--
-- The same rules as scripts/cog_to_territories.py (whose output is the
-- committed fixture tests/fixtures/real/territories_cog2024.csv; the tests
-- check this plugin defines exactly the same territories, successors
-- included):
-- - communes are TYPECOM=COM rows, arrondissements ARM rows;
-- - communes déléguées / associées (COMD/COMA) whose code differs from
--   their commune's (COMPARENT) are former communes merged into it: each
--   becomes an old code (no parents) whose successor is the current
--   commune, so that data published under it (com:85027, 2015) is counted
--   in the commune nouvelle (com:85146). A COMD with its commune's own
--   code (85146 Montaigu in Montaigu-Vendée) is the same code: nothing.
--   Chains (A into B, B later into C) are followed to the current
--   commune, weights multiplied along a path and added where two paths
--   meet (in the COG COMPARENT is already current: no chain in practice);
-- - the COG has no names for départements and régions: they come from the
--   populations légales workbook (ensemble~Departements / ~Regions);
--   Mayotte (976, région 06) is absent from it and named here;
-- - an EPCI's parent is the département holding all its communes, else
--   the région holding them all, else France: containment is exact (the
--   engine counts a territory's descendants through its parents, so a
--   cross-border EPCI under one département would bring another
--   département's communes into it). How many EPCI cross a border is
--   logged (docs/architecture.md, "Levels are data").
-- - the COG lists only the former communes that are still communes
--   déléguées / associées; those absorbed outright (fusion simple: 18131
--   into Osmery) left no row. The npm package of the same COG year,
--   @etalab/decoupage-administratif (config `anciens_codes`, on a fetch
--   root: node_modules/ for `make run` and the daemon), lists for every
--   current commune its `anciensCodes`: the codes not already in the COG
--   become old codes too (weight 1: the package has no split). The COG
--   wins where both know a code (two associées moved since their first
--   merger). A package commune missing from the COG means the package is
--   of another year: the run stops. `anciens_codes = ""` leaves it out.
local EXTRA_DEPS = { ["976"] = { "06", "Mayotte" } }
local EXTRA_REGS = { ["06"] = "Mayotte" }

local function sorted_keys(t)
  local k = {}
  for key in pairs(t) do k[#k + 1] = key end
  table.sort(k)
  return k
end

local function count(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n
end

-- Each old code (COMD/COMA row) -> list of {current code, weight},
-- following chains; `communes` the current ones. Refuses what the Python
-- script refuses: an old code given two different communes, a chain that
-- ends nowhere or loops. An old code that is also a current commune is
-- not an old code: skipped with a warning. Returns passage, old names.
local function passage_table(ctx, file, communes, olds)
  local current = {}
  for _, c in ipairs(communes) do current[c[1]] = true end
  local succ, name = {}, {}
  for _, o in ipairs(olds) do
    local code, parent = o[1], o[3]
    if current[code] then
      ctx:log("warn", ("%s:%d: %s %s is also a current commune: not an old code, skipped")
        :format(file, o[4], o[5], code))
    else
      if succ[code] and succ[code] ~= parent then
        error(("%s:%d: old code %s has two communes (%s, %s)")
          :format(file, o[4], code, succ[code], parent))
      end
      succ[code], name[code] = parent, o[2]
    end
  end
  local function walk(code, path)
    if current[code] then return { [code] = 1.0 } end
    if path[code] or not succ[code] then
      local p = {}
      for c in pairs(path) do p[#p + 1] = c end
      table.sort(p)
      error(("%s: old code %s: no current successor (via %s)")
        :format(file, code, table.concat(p, ", ")))
    end
    path[code] = true
    local acc = {}
    -- One commune per old code in the COG (weight 1): a chain ends
    -- where its last link does, with that link's weights.
    for c, w in pairs(walk(succ[code], path)) do acc[c] = (acc[c] or 0) + w end
    path[code] = nil
    return acc
  end
  local out = {}
  for old in pairs(succ) do
    local list = {}
    for c, w in pairs(walk(old, {})) do list[#list + 1] = { c, w } end
    table.sort(list, function(a, b) return a[1] < b[1] end)
    out[old] = list
  end
  return out, name
end

-- Old codes from the package's `anciensCodes` that the COG does not know
-- (see the header): added to `passage` / `old_name`. Returns their count.
local function anciens_codes(ctx, path, communes, arms, passage, old_name)
  local src = ctx:fetch(path)
  local list = ctx:json(src)
  local current, name = {}, {}
  for _, c in ipairs(communes) do current[c[1]], name[c[1]] = true, c[2] end
  for _, a in ipairs(arms) do current[a[1]] = true end
  local added, seen = 0, {}
  for i, c in ipairs(list) do
    if type(c) ~= "table" or type(c.code) ~= "string" then
      error(("%s: entry %d has no code"):format(src.name, i))
    end
    -- zone "com": the collectivités d'outre-mer (Saint-Pierre-et-Miquelon,
    -- Polynésie...), outside the COG's communes and outside Vigie's France.
    if c.type == "commune-actuelle" and c.zone ~= "com" then
      if not current[c.code] then
        error(("%s: commune %s (%s) is not in the COG: the package and the COG are "
          .. "not of the same year"):format(src.name, c.code, tostring(c.nom)))
      end
      for _, old in ipairs(type(c.anciensCodes) == "table" and c.anciensCodes or {}) do
        if current[old] then
          error(("%s: %s, an old code of %s, is a current commune")
            :format(src.name, old, c.code))
        elseif seen[old] and seen[old] ~= c.code then
          error(("%s: old code %s given to two communes (%s, %s)")
            :format(src.name, old, seen[old], c.code))
        elseif not passage[old] then
          seen[old] = c.code
          passage[old] = { { c.code, 1 } }
          -- The package gives no name: as scripts/decoupage_to_territories.py.
          old_name[old] = ("%s (ancienne commune, dans %s)"):format(old, name[c.code])
          added = added + 1
        end
      end
    end
  end
  return added
end

return {
  name = "cog",
  description = "Géographie : communes, arrondissements, EPCI, départements, régions (INSEE, COG)",
  config = {
    -- Byte copies of the INSEE files (plugins/data/SHA256SUMS), found
    -- next to the plugin: no network, no ../shared needed.
    communes = "data/cog/v_commune_2024.csv",
    epci = "data/epci/EPCI_au_01-01-2024~Composition_communale.csv",
    epci_names = "data/epci/EPCI_au_01-01-2024~EPCI.csv",
    departements = "data/population/popref2025_rp2022/ensemble~Departements.csv",
    regions = "data/population/popref2025_rp2022/ensemble~Regions.csv",
    -- COG 2024 = version 4.1.0 (package.json pins it).
    anciens_codes = "@etalab/decoupage-administratif/data/communes.json",
  },
  -- The COG of 1 January is published in the first months of the year;
  -- a run on unchanged files commits nothing new, so nothing downstream
  -- reruns. The plugins that write by territory list cog in `after`.
  schedule = "0 3 1 3 *",
  timeout = "10m",
  memory = "512M",
  run = function(ctx)
    local cfg = ctx.config
    local regs, deps = {}, {}
    for row in ctx:csv(ctx:fetch(cfg.regions), { sep = ";" }) do
      regs[row["Code région"]] = row["Nom de la région"]
    end
    for row in ctx:csv(ctx:fetch(cfg.departements), { sep = ";" }) do
      deps[row["Code département"]] = { row["Code région"], row["Nom du département"] }
    end
    for k, v in pairs(EXTRA_REGS) do regs[k] = regs[k] or v end
    for k, v in pairs(EXTRA_DEPS) do deps[k] = deps[k] or v end

    local epci_of, epci_name = {}, {}
    for row in ctx:csv(ctx:fetch(cfg.epci), { sep = ";" }) do
      if row.EPCI ~= "" and row.EPCI ~= "ZZZZZZZZZ" then
        epci_of[row.CODGEO] = row.EPCI
        epci_name[row.EPCI] = row.LIBEPCI
      end
    end
    for row in ctx:csv(ctx:fetch(cfg.epci_names), { sep = ";" }) do
      if row.EPCI ~= "ZZZZZZZZZ" then epci_name[row.EPCI] = row.LIBEPCI end
    end

    local src = ctx:fetch(cfg.communes)
    local communes, arms, olds = {}, {}, {}
    for row, line in ctx:csv(src, { sep = "," }) do
      if row.TYPECOM == "COM" then
        if not deps[row.DEP] or not regs[row.REG] then
          error(("%s:%d: commune %s: unknown département %s or région %s")
            :format(src.name, line, row.COM, row.DEP, row.REG))
        end
        communes[#communes + 1] = { row.COM, row.LIBELLE, row.DEP, row.REG }
      elseif row.TYPECOM == "ARM" then
        arms[#arms + 1] = { row.COM, row.LIBELLE, row.DEP, row.REG, row.COMPARENT }
      elseif (row.TYPECOM == "COMD" or row.TYPECOM == "COMA") and row.COM ~= row.COMPARENT then
        olds[#olds + 1] = { row.COM, row.LIBELLE, row.COMPARENT, line, row.TYPECOM }
      end
    end
    local passage, old_name = passage_table(ctx, src.name, communes, olds)
    local nanciens = 0
    if cfg.anciens_codes and cfg.anciens_codes ~= "" then
      nanciens = anciens_codes(ctx, cfg.anciens_codes, communes, arms, passage, old_name)
    end

    local epci_deps, epci_regs = {}, {}
    for _, c in ipairs(communes) do
      local e = epci_of[c[1]]
      if e then
        epci_deps[e] = epci_deps[e] or {}
        epci_regs[e] = epci_regs[e] or {}
        epci_deps[e][c[3]] = true
        epci_regs[e][c[4]] = true
      end
    end

    ctx:define_territory{ code = "fr", name = "France" }
    for _, code in ipairs(sorted_keys(regs)) do
      ctx:define_territory{ code = "reg:" .. code, name = regs[code], parents = { "fr" } }
    end
    for _, code in ipairs(sorted_keys(deps)) do
      ctx:define_territory{ code = "dep:" .. code, name = deps[code][2],
                            parents = { "reg:" .. deps[code][1] } }
    end
    local cross_dep, cross_reg = 0, 0
    for _, e in ipairs(sorted_keys(epci_deps)) do
      local parent = "fr"
      if count(epci_deps[e]) == 1 then
        parent = "dep:" .. next(epci_deps[e])
      elseif count(epci_regs[e]) == 1 then
        parent = "reg:" .. next(epci_regs[e])
      end
      if count(epci_deps[e]) > 1 then cross_dep = cross_dep + 1 end
      if count(epci_regs[e]) > 1 then cross_reg = cross_reg + 1 end
      ctx:define_territory{ code = "epci:" .. e, name = epci_name[e] or e, parents = { parent } }
    end
    for i, c in ipairs(communes) do
      local parents = {}
      if epci_of[c[1]] then parents[1] = "epci:" .. epci_of[c[1]] end
      parents[#parents + 1] = "dep:" .. c[3]
      parents[#parents + 1] = "reg:" .. c[4]
      ctx:define_territory{ code = "com:" .. c[1], name = c[2], parents = parents }
      if i % 5000 == 0 then ctx:progress(i, #communes + #arms) end
    end
    for _, a in ipairs(arms) do
      ctx:define_territory{ code = "arm:" .. a[1], name = a[2],
                            parents = { "com:" .. a[5], "dep:" .. a[3], "reg:" .. a[4] } }
    end
    -- After the communes: a successor must be defined (here or in the
    -- store) when the run commits.
    local olds_sorted = sorted_keys(passage)
    for _, old in ipairs(olds_sorted) do
      local succ = {}
      for i, s in ipairs(passage[old]) do
        succ[i] = { code = "com:" .. s[1], weight = s[2] }
      end
      ctx:define_territory{ code = "com:" .. old, name = old_name[old], successors = succ }
    end
    ctx:progress(#communes + #arms, #communes + #arms)
    ctx:log("info", ("%d régions, %d départements, %d EPCI, %d communes, %d arrondissements municipaux, %d old commune codes")
      :format(count(regs), count(deps), count(epci_deps), #communes, #arms, #olds_sorted))
    if nanciens > 0 then
      ctx:log("info", ("%d of the old codes are former communes absorbed outright "
        .. "(anciensCodes of %s, not in the COG)"):format(nanciens, cfg.anciens_codes))
    end
    ctx:log("info", ("%d EPCI cross a département border (%d of them a région border): "
      .. "their parent is their région (or France), not a département")
      :format(cross_dep, cross_reg))
  end,
}
