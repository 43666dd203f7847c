-- wrk side of scripts/bench-load: the same two requests as the
-- turbulence-load and Locust runs, alternating on each connection
-- (wrk does not check statuses beyond counting non-2xx/3xx).
local requests = {}

init = function(args)
  local body = '{"image_url":"https://example.com/a.jpg"}'
  requests[1] = wrk.format("POST", "/moderate", {
    ["Authorization"] = "Bearer turbulence-invalid-token",
    ["Content-Type"] = "application/json",
  }, body)
  requests[2] = wrk.format("POST", "/moderate", {
    ["Authorization"] = "Bearer demo-token",
    ["Content-Type"] = "application/json",
  }, '{"image_url":"https://example.com/a.jpg",')
end

local n = 0
request = function()
  n = n + 1
  return requests[n % 2 + 1]
end
