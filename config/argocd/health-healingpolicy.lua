-- Argo CD health of a HealingPolicy or a ClusterHealingPolicy
-- (autonomic.homeostat.dev/v1alpha1): the same script for both kinds.
-- Healthy when Ready is True for the current generation; Degraded when Ready is False,
-- which a policy is only when its spec cannot be used; Progressing until Homeostat has
-- reconciled the latest spec. Conflicts with other policies are reported in the message
-- (status.conflicts lists them) but are not a fault: the merge order decides them.
local hs = {}

local function result(status, message)
  hs.status = status
  hs.message = message
  return hs
end

local generation = obj.metadata.generation or 0
if obj.status == nil or (obj.status.observedGeneration or 0) < generation then
  return result("Progressing", "Waiting for Homeostat to reconcile the latest spec.")
end
local ready = nil
if obj.status.conditions ~= nil then
  for _, c in ipairs(obj.status.conditions) do
    if c.type == "Ready" then
      ready = c
    end
  end
end
if ready == nil or (ready.observedGeneration or generation) < generation then
  return result("Progressing", "Waiting for Homeostat to reconcile the latest spec.")
end
if ready.status == "True" then
  return result("Healthy", ready.message)
end
if ready.status == "False" then
  return result("Degraded", ready.message)
end
return result("Progressing", ready.message)
