-- What every wrk script of bench/ shares (loaded with dofile by save.lua, realistic.lua and
-- list.lua): each thread counts its responses, non-2xx and statuses, and done() prints one
-- machine-readable line starting with "RESULT" that the bench scripts parse, including the
-- count of non-2xx responses, so a run with errors cannot pass unnoticed. A script's init()
-- calls reset_counts().

threads = {}
local counter = 0

function setup(thread)
   counter = counter + 1
   thread:set("tid", counter)
   table.insert(threads, thread)
end

function reset_counts()
   responses = 0
   non2xx = 0
   statuses = {}
end

function response(status, headers, body)
   responses = responses + 1
   if status < 200 or status > 299 then
      non2xx = non2xx + 1
      statuses[status] = (statuses[status] or 0) + 1
      if non2xx <= 3 then
         io.stderr:write("non-2xx response " .. status .. ": " .. tostring(body) .. "\n")
      end
   end
end

function done(summary, latency, requests)
   local total_responses, total_non2xx = 0, 0
   local by_status = {}
   for _, t in ipairs(threads) do
      total_responses = total_responses + (t:get("responses") or 0)
      total_non2xx = total_non2xx + (t:get("non2xx") or 0)
      local s = t:get("statuses")
      if s then
         for code, n in pairs(s) do by_status[code] = (by_status[code] or 0) + n end
      end
   end
   local seconds = summary.duration / 1e6
   local e = summary.errors
   local socket_errors = e.connect + e.read + e.write + e.timeout
   local codes = {}
   for code, n in pairs(by_status) do table.insert(codes, code .. ":" .. n) end
   io.write(string.format(
      "RESULT requests=%d responses=%d seconds=%.3f rps=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f non2xx=%d socket_errors=%d timeouts=%d non2xx_by_status=%s\n",
      summary.requests, total_responses, seconds, summary.requests / seconds,
      latency:percentile(50) / 1000, latency:percentile(90) / 1000,
      latency:percentile(99) / 1000, latency.max / 1000,
      total_non2xx, socket_errors, e.timeout,
      (#codes > 0) and table.concat(codes, ",") or "none"))
end
