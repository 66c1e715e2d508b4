-- Derived densities: ratio indicators over counts and populations written
-- by other plugins. A ratio is never stored: the engine computes it at
-- every scale (a commune, an EPCI, a CLS perimeter) as sum(num)/sum(den),
-- so this plugin only declares the rules, and reports at each run which
-- inputs are there (at `fr`) so a missing input is visible in the log.
--
-- The two official GP density families are separate indicators and never
-- mixed: all GPs (RPPS, plugin rpps_gp) and liberal GPs (Assurance
-- Maladie, plugin ameli_open_data). Their denominators differ too: the
-- populations légales (by commune) for RPPS counts by commune, the INSEE
-- estimates (by département) for the Assurance Maladie counts, as in its
-- published densities.
-- The engine pairs numerator and denominator of the same period, member
-- by member: gp_density_rpps exists for the years where the RPPS count
-- (by commune) and the populations légales (by commune) share a period;
-- gp_density_liberal and physician_density pair counts by département
-- with the estimates by département, so they exist from the département
-- up, not for a commune or an EPCI.
local function ratio(label, num, den, source, description)
  return { label = label, unit = "pour 100 000 habitants",
           aggregate = ("ratio(%s, %s, 1e5)"):format(num, den),
           source = source, periodicity = "year", decimals = 0,
           licence = "Licence Ouverte 2.0", description = description }
end

local INDICATORS = {
  physician_density = ratio("Densité de médecins (ensemble), recalculée",
    "physicians", "population_estimee",
    "DREES, RPPS (TCRD_068) ; Insee, estimations de population",
    "Médecins au 1er janvier / population estimée au 1er janvier × 100 000. "
      .. "Reproduit la densité publiée (physicians_density_pub) à l'arrondi près."),
  gp_density_rpps = ratio("Densité de médecins généralistes (tous modes d'exercice, RPPS)",
    "gp_count_rpps", "population",
    "Annuaire Santé / RPPS (ANS) ; Insee, populations de référence",
    "Médecins généralistes (sites d'exercice, 1/n par site) / population municipale × 100 000."),
  gp_density_liberal = ratio("Densité de médecins généralistes libéraux (Assurance Maladie)",
    "gp_liberal_count", "population_estimee",
    "Assurance Maladie, data.ameli.fr ; Insee, estimations de population",
    "Médecins généralistes libéraux / population estimée au 1er janvier × 100 000 "
      .. "(le dénominateur des densités publiées par l'Assurance Maladie)."),
  -- A share, not a density: scale 100. Both counts come by département
  -- (plugin ameli_no_mt), so it exists from the département up.
  no_mt_share = {
    label = "Part des patients de 17 ans et plus sans médecin traitant", unit = "%",
    aggregate = "ratio(patients_17p_without_mt, patients_17p, 100)",
    source = "Assurance Maladie, data.ameli.fr (jeu de données non vérifié hors ligne)",
    licence = "Licence Ouverte 2.0", periodicity = "year", decimals = 1,
    description = "Patients de 17 ans et plus sans médecin traitant / patients de 17 ans et "
      .. "plus × 100, somme des numérateurs sur somme des dénominateurs à chaque échelle.",
  },
}

-- The inputs each rule needs, with the period to look for at `fr`.
local INPUTS = { "physicians", "population_estimee", "gp_count_rpps", "population",
                 "gp_liberal_count", "patients_17p_without_mt", "patients_17p" }

return {
  name = "health_densities",
  description = "Densités et parts dérivées (ratios de sommes) : médecins, généralistes RPPS et "
    .. "libéraux, patients sans médecin traitant",
  after = { "insee_population", "insee_estimations", "drees_physicians", "rpps_gp",
            "ameli_open_data", "ameli_no_mt", "population_series" },
  indicators = INDICATORS,
  config = { period = "2025" },
  timeout = "1m",
  memory = "16M",
  run = function(ctx)
    for _, ind in ipairs(INPUTS) do
      local v, why = ctx:get(ind, "fr", ctx.config.period)
      if v == nil then
        ctx:log("info", ("input %s at fr %s: %s"):format(ind, ctx.config.period, tostring(why)))
      end
    end
  end,
}
