-- http_rotate.lua -- wrk script for bench/http_bench.sh: each request asks
-- the next path of the file $NW_PATHS (one path per line; one line = one
-- URL over and over), each thread starting at its own offset, so that wrk
-- can measure many distinct questions (no answer is the same twice in a
-- row: nothing a cache could serve).  Sends "If-None-Match: $NW_ETAG" when
-- that is set.  Counts the statuses and prints them at the end.
--
--   NW_PATHS=paths.txt wrk -s bench/http_rotate.lua --latency http://127.0.0.1:8080

local file = os.getenv("NW_PATHS")
if file == nil or file == "" then
    error("http_rotate.lua: set NW_PATHS to a file of paths, one per line")
end
paths = {}
for line in io.lines(file) do
    if line ~= "" then paths[#paths + 1] = line end
end
if #paths == 0 then error("http_rotate.lua: no paths in " .. file) end
local etag = os.getenv("NW_ETAG")
if etag ~= nil and etag ~= "" then wrk.headers["If-None-Match"] = etag end

local threads = {}
local nthreads = 0

function setup(thread)
    nthreads = nthreads + 1
    thread:set("offset", nthreads * 7919)
    table.insert(threads, thread)
end

function init(args)
    i = offset or 0
    s200, s304, other = 0, 0, 0
end

function request()
    i = i + 1
    return wrk.format("GET", paths[(i % #paths) + 1])
end

function response(status, headers, body)
    if status == 200 then s200 = s200 + 1
    elseif status == 304 then s304 = s304 + 1
    else other = other + 1 end
end

function done(summary, latency, requests)
    local a, b, c = 0, 0, 0
    for _, t in ipairs(threads) do
        a = a + t:get("s200"); b = b + t:get("s304"); c = c + t:get("other")
    end
    io.write(string.format("paths: %d, status 200: %d, 304: %d, other: %d\n", #paths, a, b, c))
end
