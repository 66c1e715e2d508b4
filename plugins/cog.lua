-- The French geography from the INSEE Code officiel géographique: France,
-- régions, départements, EPCI, communes and arrondissements municipaux,
-- with their parents (a commune: its EPCI, département and région; an
-- arrondissement: its commune, département and région). Re-runnable each
-- year: point the config at the new vintage.
--
-- The same rules as scripts/cog_to_territories.py (whose output is the
-- committed fixture tests/fixtures/real/territories_cog2024.csv; the test
-- checks this plugin defines exactly the same territories):
-- - communes are TYPECOM=COM rows, arrondissements ARM rows; communes
--   déléguées / associées (COMD/COMA) are not territories (they feed a
--   passage table, not written by this plugin: see drees_apl for their
--   use);
-- - the COG has no names for départements and régions: they come from the
--   populations légales workbook (ensemble~Departements / ~Regions);
--   Mayotte (976, région 06) is absent from it and named here;
-- - an EPCI's parent is the département holding all its communes, else
--   the région holding them all, else France.
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

return {
  name = "cog",
  description = "Géographie : communes, arrondissements, EPCI, départements, régions (INSEE, COG)",
  config = {
    communes = "cog/v_commune_2024.csv",
    epci = "epci/EPCI_au_01-01-2024~Composition_communale.csv",
    epci_names = "epci/EPCI_au_01-01-2024~EPCI.csv",
    departements = "population/popref2025_rp2022/ensemble~Departements.csv",
    regions = "population/popref2025_rp2022/ensemble~Regions.csv",
  },
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
    local communes, arms = {}, {}
    for row, line in ctx:csv(src, { sep = "," }) do
      if row.TYPECOM == "COM" then
        if not deps[row.DEP] or not regs[row.REG] then
          error(("%s:%d: commune %s: unknown département %s or région %s")
            :format(src.name, line, row.COM, row.DEP, row.REG))
        end
        communes[#communes + 1] = { row.COM, row.LIBELLE, row.DEP, row.REG }
      elseif row.TYPECOM == "ARM" then
        arms[#arms + 1] = { row.COM, row.LIBELLE, row.DEP, row.REG, row.COMPARENT }
      end
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
    for _, e in ipairs(sorted_keys(epci_deps)) do
      local parent = "fr"
      if count(epci_deps[e]) == 1 then
        parent = "dep:" .. next(epci_deps[e])
      elseif count(epci_regs[e]) == 1 then
        parent = "reg:" .. next(epci_regs[e])
      end
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
    ctx:progress(#communes + #arms, #communes + #arms)
    ctx:log("info", ("%d régions, %d départements, %d EPCI, %d communes, %d arrondissements municipaux")
      :format(count(regs), count(deps), count(epci_deps), #communes, #arms))
  end,
}
