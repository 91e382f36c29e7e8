-- Argo CD health of an infometis.io KafkaTopic, from the conditions the
-- operator writes (README, "Argo CD"; NiFiFlow's script is the same):
--   no status yet, or a generation not handled yet   -> Progressing
--   Stalled=True (a user must act)                   -> Degraded
--   Reconciling=True (working, or retrying)          -> Progressing
--   Ready reason Suspended (spec.suspend: true)      -> Suspended
--   Ready=True (drift reported as asked included)    -> Healthy
--   Ready False or Unknown otherwise                 -> Progressing
-- Argo CD runs it in gopher-lua (Lua 5.1) with only the base, table and a
-- reduced os library: no string library, so strings are joined with `..`.
local function said(condition)
  if condition.reason == nil or condition.reason == "" then
    return condition.message or ""
  end
  if condition.message == nil or condition.message == "" then
    return condition.reason
  end
  return condition.reason .. ": " .. condition.message
end

if obj.status == nil or obj.status.conditions == nil then
  return { status = "Progressing", message = "Waiting for the operator to handle this object" }
end
if obj.status.observedGeneration ~= obj.metadata.generation then
  return { status = "Progressing", message = "Waiting for the operator to handle generation " .. obj.metadata.generation }
end
local conditions = {}
for _, condition in ipairs(obj.status.conditions) do
  if condition.type ~= nil then
    conditions[condition.type] = condition
  end
end
local stalled, reconciling, ready = conditions["Stalled"], conditions["Reconciling"], conditions["Ready"]
if stalled ~= nil and stalled.status == "True" then
  return { status = "Degraded", message = said(stalled) }
end
if reconciling ~= nil and reconciling.status == "True" then
  return { status = "Progressing", message = said(reconciling) }
end
if ready == nil then
  return { status = "Progressing", message = "Waiting for the operator to handle this object" }
end
if ready.reason == "Suspended" then
  return { status = "Suspended", message = ready.message }
end
if ready.status ~= "True" then
  return { status = "Progressing", message = said(ready) }
end
if ready.reason == "DriftDetected" then
  -- Reported drift is what driftPolicy: Report asked for: healthy, and said so.
  return { status = "Healthy", message = said(ready) }
end
return { status = "Healthy", message = ready.message }
