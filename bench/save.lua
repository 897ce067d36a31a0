-- wrk script for the Save benchmark (bench/save.sh): every request is a
-- POST /api/JobDispatchLog/Save of a new row with a fresh random id, jobs_id and user_id.
--
-- Environment: DISPATCHLOG_BENCH_AUTH = the whole Authorization header value ("Basic ...").
-- done() prints one machine-readable line starting with "RESULT" that bench/save.sh parses,
-- including the count of non-2xx responses, so a run with errors cannot pass unnoticed.

dofile("bench/result.lua")

function init(args)
   -- Each wrk thread has its own Lua state: seed it differently per thread and per run.
   math.randomseed(os.time() * 1000 + tid * 7919 + math.floor((os.clock() * 1e6) % 1000))
   for _ = 1, 10 do math.random() end
   wrk.method = "POST"
   wrk.path = "/api/JobDispatchLog/Save"
   wrk.headers["Content-Type"] = "application/json"
   wrk.headers["Authorization"] = os.getenv("DISPATCHLOG_BENCH_AUTH") or ""
   reset_counts()
end

local function hex(n)
   return string.format("%0" .. n .. "x", math.random(0, 16 ^ n - 1))
end

-- A random version-4 GUID.
local function guid()
   return hex(4) .. hex(4) .. "-" .. hex(4) .. "-4" .. hex(3) .. "-"
      .. string.format("%x", math.random(8, 11)) .. hex(3) .. "-" .. hex(4) .. hex(4) .. hex(4)
end

function request()
   local body = '{"id":"' .. guid() .. '","jobs_id":"' .. guid() .. '","user_id":"' .. guid() .. '"}'
   return wrk.format(nil, nil, nil, body)
end
