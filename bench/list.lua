-- wrk script: GET /api/JobDispatchLog?$top=20 (the first page of a dispatch screen's list) as
-- the bench's admin; the path can be changed with DISPATCHLOG_BENCH_PATH.
--
-- Environment: DISPATCHLOG_BENCH_AUTH = the whole Authorization header value ("Basic ...").
-- done() prints the RESULT line of bench/result.lua (requests, rps, percentiles, non-2xx).

dofile("bench/result.lua")

function init(args)
   wrk.method = "GET"
   wrk.path = os.getenv("DISPATCHLOG_BENCH_PATH") or "/api/JobDispatchLog?$top=20"
   wrk.headers["Accept"] = "application/json"
   wrk.headers["Authorization"] = os.getenv("DISPATCHLOG_BENCH_AUTH") or ""
   reset_counts()
end
