-- Argo CD health for every infometis.io kind (KafkaTopic, ElasticsearchIndex): they share the conditions.
-- Install: see README.md, "Argo CD". Follows kstatus: Stalled -> Degraded,
-- Reconciling or an unhandled generation -> Progressing, Ready=True -> Healthy
-- (reported drift included), suspended -> Suspended.
local health = { status = "Progressing", message = "Waiting for the operator to handle this object" }
if obj.status == nil or obj.status.conditions == nil then
  return health
end
if obj.status.observedGeneration ~= obj.metadata.generation then
  health.message = "The operator has not handled the latest spec yet"
  return health
end
local conditions = {}
for _, condition in ipairs(obj.status.conditions) do
  conditions[condition.type] = condition
end
local stalled, reconciling, ready = conditions["Stalled"], conditions["Reconciling"], conditions["Ready"]
if stalled ~= nil and stalled.status == "True" then
  return { status = "Degraded", message = stalled.reason .. ": " .. stalled.message }
end
if reconciling ~= nil and reconciling.status == "True" then
  return { status = "Progressing", message = reconciling.reason .. ": " .. reconciling.message }
end
if ready ~= nil then
  if ready.reason == "Suspended" then
    return { status = "Suspended", message = ready.message }
  end
  if ready.status == "True" and ready.reason == "DriftDetected" then
    -- Reported drift is deliberate (driftPolicy: Report): healthy, and said so.
    return { status = "Healthy", message = ready.reason .. ": " .. ready.message }
  end
  if ready.status == "True" then
    return { status = "Healthy", message = ready.message }
  end
  return { status = "Progressing", message = ready.reason .. ": " .. ready.message }
end
return health
