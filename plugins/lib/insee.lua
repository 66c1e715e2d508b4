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

return M
