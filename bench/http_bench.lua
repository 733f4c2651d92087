-- http_bench.lua -- wrk script for bench/http_bench.sh: sends every request
-- with "If-None-Match: $NW_ETAG" (the ETag of the URL's current answer), so
-- wrk measures netwhod's 304 Not Modified path.  Counts the statuses and
-- prints them at the end, so the script can check that they were 304s.
--
--   NW_ETAG='"8d70d67440dd6f0a"' wrk -s bench/http_bench.lua --latency URL

local etag = os.getenv("NW_ETAG")
if etag == nil or etag == "" then
    error("http_bench.lua: set NW_ETAG to the ETag to send in If-None-Match")
end
wrk.headers["If-None-Match"] = etag

local threads = {}

function setup(thread)
    table.insert(threads, thread)
end

function init(args)
    s304 = 0
    other = 0
end

function response(status, headers, body)
    if status == 304 then
        s304 = s304 + 1
    else
        other = other + 1
    end
end

function done(summary, latency, requests)
    local a, b = 0, 0
    for _, t in ipairs(threads) do
        a = a + t:get("s304")
        b = b + t:get("other")
    end
    io.write(string.format("status 304: %d, other: %d\n", a, b))
end
