-- Argo CD health of an AutonomicApp (autonomic.homeostat.dev/v1alpha1).
-- Degraded means a person is needed: the app's spec cannot run, or Homeostat gave up
-- (phase NeedsAttention). What Homeostat is still working on is Progressing: a status
-- not yet written for this generation, a component or ServiceAccount still to appear,
-- an open remediation episode, and a Degraded phase, which lasts until a policy acts or
-- the workloads recover (a workload that is stuck reports Degraded itself). Paused is
-- Suspended. An unavailable sensor changes nothing here: Homeostat holds on missing data.
local hs = {}

local function condition(kind)
  if obj.status.conditions == nil then
    return nil
  end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

local function result(status, message)
  hs.status = status
  hs.message = message
  return hs
end

local generation = obj.metadata.generation or 0
if obj.status == nil or obj.status.phase == nil or obj.status.phase == "" then
  return result("Progressing", "Waiting for Homeostat to reconcile the app.")
end
if (obj.status.observedGeneration or 0) < generation then
  return result("Progressing", "Waiting for Homeostat to reconcile the latest spec.")
end

local ready = condition("Ready")
local stalled = condition("Stalled")
if stalled ~= nil and stalled.status == "True" then
  return result("Degraded", stalled.message)
end
if ready ~= nil and ready.status == "False" and
    (ready.reason == "InvalidSpec" or ready.reason == "HierarchyCycle" or ready.reason == "HierarchyTooDeep") then
  return result("Degraded", ready.message)
end

local phase = obj.status.phase
if phase == "Paused" then
  local suspended = condition("Suspended")
  if suspended ~= nil and suspended.status == "True" then
    return result("Suspended", suspended.message)
  end
  return result("Suspended", "The app is paused: no action is taken.")
end
if phase == "NeedsAttention" then
  local attention = condition("NeedsAttention")
  if attention ~= nil and attention.status == "True" then
    return result("Degraded", "Needs attention: " .. attention.message)
  end
  return result("Degraded", "Needs attention: see kubectl homeostat why.")
end

if ready == nil or ready.status ~= "True" or (ready.observedGeneration or generation) < generation then
  if ready ~= nil and ready.message ~= nil then
    return result("Progressing", ready.message)
  end
  return result("Progressing", "Waiting for the app to become ready.")
end

if phase == "Remediating" then
  local remediating = condition("Remediating")
  if remediating ~= nil and remediating.message ~= nil then
    return result("Progressing", remediating.message)
  end
  return result("Progressing", "A remediation episode is open.")
end
if phase == "Degraded" then
  local healthy = condition("Healthy")
  if healthy ~= nil and healthy.status == "False" and healthy.message ~= nil then
    return result("Progressing", "Degraded, no remediation episode open yet: " .. healthy.message)
  end
  return result("Progressing", "Degraded: a symptom is active, no remediation episode open yet.")
end
if phase == "Healthy" then
  local healthy = condition("Healthy")
  if healthy ~= nil and healthy.message ~= nil then
    return result("Healthy", healthy.message)
  end
  return result("Healthy", "The app is healthy.")
end
return result("Unknown", "Unknown phase " .. phase .. ".")
