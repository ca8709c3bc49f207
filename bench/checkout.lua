-- wrk's script for bench/checkout.py: every request checks out the cart of the next
-- shopper, so no cart is ordered twice.
--
--   wrk -s bench/checkout.lua URL -- TOKENS_FILE THREADS
--
-- TOKENS_FILE holds one access token per line; thread n of THREADS takes lines n,
-- n + THREADS, ... When a thread runs out of tokens it stops and the round counts as
-- exhausted (the benchmark then fails: it needs more prepared carts). done() prints one
-- JSON line: placed (201), short of stock (409), other answers, exhausted threads,
-- seconds, and the p50 and p99 latency in milliseconds.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("number", #threads)
end

function init(args)
  local all = {}
  for line in io.lines(args[1]) do
    table.insert(all, line)
  end
  tokens = {}
  for index = number, #all, tonumber(args[2]) do
    table.insert(tokens, all[index])
  end
  used, placed, short, other, exhausted = 0, 0, 0, 0, 0
  wrk.method = "POST"
  wrk.path = "/api/v1/orders"
  wrk.headers["Content-Type"] = "application/json"
  wrk.body = '{"shipping_address": {"name": "Ada Buyer", "line1": "1 Long Street",'
    .. ' "city": "Leeds", "postal_code": "LS1 1AA", "country": "GB"}}'
end

function request()
  used = used + 1
  if used > #tokens then
    exhausted = 1
    wrk.thread:stop()
    used = #tokens -- the request below goes out again, but its answer is never read
  end
  wrk.headers["Authorization"] = "Bearer " .. tokens[used]
  return wrk.format()
end

function response(status)
  if status == 201 then
    placed = placed + 1
  elseif status == 409 then
    short = short + 1
  else
    other = other + 1
  end
end

function done(summary, latency)
  local totals = { placed = 0, short = 0, other = 0, exhausted = 0 }
  for _, thread in ipairs(threads) do
    for name, count in pairs(totals) do
      totals[name] = count + thread:get(name)
    end
  end
  io.write(string.format(
    '{"placed": %d, "short": %d, "other": %d, "exhausted": %d, "seconds": %f,'
      .. ' "p50_ms": %f, "p99_ms": %f}\n',
    totals.placed, totals.short, totals.other, totals.exhausted, summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000
  ))
end
