-- wrk script: POST /api/JobDispatchLog/Save of realistic rows, what phones and dispatch systems
-- send (the default row of bench/): every field of SPEC §2 present, 7-digit dates, about 60 %
-- pending, 30 % accepted, 10 % rejected with a reason, 20 % workshop jobs (never rejected),
-- each job dispatched 1–3 times (sequence 1–3, one row per technician). Every request is a new
-- row with a fresh id; the dispatches of one job follow each other on the same wrk thread.
--
-- Environment: DISPATCHLOG_BENCH_AUTH = the whole Authorization header value ("Basic ...").
-- done() prints the RESULT line of bench/result.lua (requests, rps, percentiles, non-2xx).

dofile("bench/result.lua")

local REASONS = {
   "Customer not at home, rescheduled by phone",
   "Missing part: compressor relay, ordered from the warehouse",
   "Vehicle breakdown on the way to the site",
   "Outside my skill set: needs a certified gas engineer",
   "Site closed for the public holiday",
   "Access refused by the building manager",
}

local job, job_left, job_workshop, sequence

function init(args)
   -- Each wrk thread has its own Lua state: seed it differently per thread and per run.
   math.randomseed(os.time() * 1000 + tid * 7919 + math.floor((os.clock() * 1e6) % 1000))
   for _ = 1, 10 do math.random() end
   wrk.method = "POST"
   wrk.path = "/api/JobDispatchLog/Save"
   wrk.headers["Content-Type"] = "application/json"
   wrk.headers["Authorization"] = os.getenv("DISPATCHLOG_BENCH_AUTH") or ""
   reset_counts()
   job_left = 0
end

local function hex(n)
   return string.format("%0" .. n .. "x", math.random(0, 16 ^ n - 1))
end

-- A random version-4 GUID.
local function guid()
   return hex(4) .. hex(4) .. "-" .. hex(4) .. "-4" .. hex(3) .. "-"
      .. string.format("%x", math.random(8, 11)) .. hex(3) .. "-" .. hex(4) .. hex(4) .. hex(4)
end

-- A UTC time `back` seconds before now with seven fractional digits, as the original writes.
local function date7(back)
   local t = os.time() - back
   return os.date("!%Y-%m-%dT%H:%M:%S", t) .. string.format(".%07d", math.random(0, 9999999)) .. "Z"
end

function request()
   if job_left == 0 then
      job = guid()
      job_left = math.random(1, 3)
      job_workshop = math.random() < 0.2
      sequence = 0
   end
   job_left = job_left - 1
   sequence = sequence + 1
   -- 60 % pending, 30 % accepted, 10 % rejected; a workshop row is never rejected, so a
   -- workshop job's would-be rejection is an acceptance.
   local draw = math.random()
   local accepted, rejected = false, false
   if draw >= 0.6 and draw < 0.9 then
      accepted = true
   elseif draw >= 0.9 then
      if job_workshop then accepted = true else rejected = true end
   end
   local created_back = 60 + math.random(0, 3600)
   local proceeded = "1980-01-01T00:00:00.0000000+00:00"
   if accepted or rejected then proceeded = date7(created_back - 30) end
   local reason = ""
   if rejected then reason = REASONS[math.random(1, #REASONS)] end
   local body = '{"id":"' .. guid()
      .. '","jobs_id":"' .. job
      .. '","user_id":"' .. guid()
      .. '","date_create":"' .. date7(created_back)
      .. '","date_proceeded":"' .. proceeded
      .. '","is_accepted":' .. tostring(accepted)
      .. ',"is_rejected":' .. tostring(rejected)
      .. ',"rejected_reason":"' .. reason
      .. '","sys_logical_delete":false'
      .. ',"is_workshop":' .. tostring(job_workshop)
      .. ',"modified_dateutc":"' .. date7(0)
      .. '","sequence":' .. sequence
      .. ',"assigned_user_ids":""}'
   return wrk.format(nil, nil, nil, body)
end
