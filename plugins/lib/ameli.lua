-- Helpers for the CSV exports of data.ameli.fr (an Opendatasoft portal),
-- shared by the Assurance Maladie plugins (require "ameli").
local insee = require "insee"

local M = {}

-- Rows mix levels: region "99" is France entière, departement "999" the
-- région's total, else a département; "inconnu" (unknown) gives nil.
function M.territory(dep, reg)
  if reg == "99" then return "fr" end
  if dep == "999" then
    if reg and reg:match("^%d%d$") then return "reg:" .. reg end
    return nil
  end
  local d = insee.dep_code(dep)
  return d and "dep:" .. d or nil
end

-- Stops the run when a field the plugin reads is not in the export's
-- header (a renamed field must not silently read as empty).
function M.check_fields(row, fields, where)
  for _, k in ipairs(fields) do
    if row[k] == nil then
      error(("%s: field '%s' missing from the export (fields %s)")
        :format(where, k, table.concat(fields, ", ")), 2)
    end
  end
end

return M
