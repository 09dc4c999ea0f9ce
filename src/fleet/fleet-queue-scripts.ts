/**
 * The fleet queue's Lua, run by Redis atomically: a job is queued, taken, withdrawn or re-placed in one step,
 * so two nodes can never take the same job, and no `queued` part is logged for a job a node has taken.
 *
 * Keys (P = `kindling:q:<model>`):
 * - `P:i`, `P:b`: the waiting jobs of the interactive and batch classes; score: the job's virtual start tag
 *   (start-time fair queueing, as fair-queue.ts does on one node), member: a zero-padded arrival number then the
 *   generation's base key, so equal tags keep arrival order;
 * - `P:v`: the virtual time (the highest start tag taken); `P:f`: each principal's last finish tag; `P:n`: the
 *   arrival counter;
 * - `kindling:job:<base>`: a waiting job (its queue, front node, data, tag, class, arrival time, prefix hashes), and
 *   once a node took it, until that node's first write (STARTED), its taker;
 * - `kindling:taken-jobs`: the jobs taken and not started yet (score: when taken), every model's: a taker that
 *   dies in that window leaves its job there, and any node puts it back in its place (`reclaim`);
 * - `P:w:<principal>`: that principal's waiting jobs (member: as in `P:i`/`P:b`; score: when the job expires), for
 *   its `max_queued` across the fleet;
 * - `kindling:run:<node>`: the slots each principal holds on that node (principal → count), counted up by a take
 *   or claim here and rewritten from the node's own count at every refresh (RUNNING), expiring with the node;
 *   `kindling:run-nodes` lists the nodes that have one. Their sum is a principal's `max_concurrent` count.
 * - the generation's own log and record (fleet-part.ts), whose first part is its `queued` place.
 */

const COMMON = `
local P = ARGV[1]
local qi, qb = P .. ':i', P .. ':b'
local function jobKey(base) return 'kindling:job:' .. base end
local function logKey(base) return 'kindling:gen:' .. base .. ':log' end
local function recKey(base) return 'kindling:gen:' .. base .. ':rec' end
local function baseOf(member) return string.sub(member, 17) end
local TAKEN = 'kindling:taken-jobs'
local function placeIn(queue, class, member)
  if class == 'batch' then
    local rank = redis.call('ZRANK', queue .. ':b', member)
    if not rank then return 0 end
    return redis.call('ZCARD', queue .. ':i') + rank + 1
  end
  local rank = redis.call('ZRANK', queue .. ':i', member)
  if not rank then return 0 end
  return rank + 1
end
local function placeOf(class, member) return placeIn(P, class, member) end
local function waitKey(principal) return P .. ':w:' .. principal end
local function runKey(node) return 'kindling:run:' .. node end
local RUN_NODES = 'kindling:run-nodes'
local RUN_TTL = 5000
local counted = {}
-- The slots a principal holds across the fleet (each node's count; a node whose count expired holds none).
local function runningOf(principal)
  if counted[principal] then return counted[principal] end
  local total = 0
  for _, node in ipairs(redis.call('SMEMBERS', RUN_NODES)) do
    local n = redis.call('HGET', runKey(node), principal)
    if n then total = total + tonumber(n)
    elseif redis.call('EXISTS', runKey(node)) == 0 then redis.call('SREM', RUN_NODES, node) end
  end
  counted[principal] = total
  return total
end
local function holdSlot(node, principal)
  local total = runningOf(principal)
  redis.call('HINCRBY', runKey(node), principal, 1)
  redis.call('PEXPIRE', runKey(node), RUN_TTL)
  redis.call('SADD', RUN_NODES, node)
  counted[principal] = total + 1
end
local function underCap(principal, cap)
  return cap == nil or cap == '' or runningOf(principal) < tonumber(cap)
end
-- A job leaves its principal's waiting set (taken, withdrawn or dropped).
local function unwait(job)
  local principal, member = unpack(redis.call('HMGET', job, 'principal', 'member'))
  if principal and member then redis.call('ZREM', waitKey(principal), member) end
end
local function queuedPart(place) return '{"type":"queued","position":' .. place .. '}' end
local function alive(node)
  return node and (redis.call('EXISTS', 'kindling:alive:' .. node) == 1 or
    redis.call('EXISTS', 'kindling:node:' .. node) == 1)
end
-- The node of another live generation under this base (a client key that is queued or running elsewhere), if any.
local function liveHolder(base, node, id)
  local holder, status, holderId = unpack(redis.call('HMGET', recKey(base), 'node', 'status', 'id'))
  if status and status ~= 'done' and holderId ~= id and holder ~= node and alive(holder) then return holder end
  return nil
end
local function appendPart(base, part)
  local log = logKey(base)
  redis.call('XADD', log, '0-' .. (redis.call('XLEN', log) + 1), 'p', part)
end
-- An anonymous job whose front is gone: no one can read it, so it ends (its log says why) instead of running.
local function dropOrphan(base, front)
  unwait(jobKey(base))
  redis.call('DEL', jobKey(base))
  appendPart(base, '{"type":"error","error":{"code":"unavailable","message":"Fleet node ' .. front ..
    ', which held this request\\'s connection, stopped while it waited in the queue; send it again."}}')
  redis.call('HSET', recKey(base), 'status', 'done')
end
-- A job whose taker died before its first write goes back to its place (same tag, same arrival number), once
-- for each such death; its record names its front again and its log gets its place. Returns what the job is now:
-- 'waiting' (in a queue), 'taken' (by a live node), 'requeued', or 'gone' (started, ended, expired or dropped).
local function reclaim(base)
  local job = jobKey(base)
  local taker = redis.call('HGET', job, 'taker')
  if not taker then
    redis.call('ZREM', TAKEN, base)
    if redis.call('HEXISTS', job, 'member') == 1 then return 'waiting' end
    return 'gone'
  end
  if alive(taker) then return 'taken' end
  redis.call('ZREM', TAKEN, base)
  local queue, member, tag, class, front, keyed = unpack(redis.call('HMGET', job, 'queue', 'member', 'tag', 'class',
    'front', 'keyed'))
  if not alive(front) and keyed ~= '1' then
    dropOrphan(base, front)
    return 'gone'
  end
  redis.call('HDEL', job, 'taker')
  redis.call('ZADD', queue .. (class == 'batch' and ':b' or ':i'), tag, member)
  local time = redis.call('TIME')
  local principal = redis.call('HGET', job, 'principal')
  if principal then
    local expires = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000) + redis.call('PTTL', job)
    redis.call('ZADD', queue .. ':w:' .. principal, expires, member)
  end
  redis.call('HSET', recKey(base), 'node', front, 'status', 'queued')
  appendPart(base, queuedPart(placeIn(queue, class, member)))
  return 'requeued'
end
`;

/**
 * ARGV: P, base, front node, now, weight, class, max queue, job data, prefix hashes (",a,b,"), principal, ttl ms,
 * server id, keyed ('1' when the client chose the key), the principal's max_concurrent and max_queued ('' for no
 * limit), then the record's field/value pairs. Returns {place, waiting}; {-1, waiting} when the queue is full;
 * {-2, the principal's waiting jobs} when the principal has its max_queued waiting; {-3, node} when the client's
 * key names a generation still queued or running on that (live) node.
 */
export const PUSH = `${COMMON}
local base, front, now, weight, class = ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
if ARGV[13] == '1' then
  local holder = liveHolder(base, front, ARGV[12])
  if holder then return {-3, holder} end
end
local waiting = redis.call('ZCARD', qi) + redis.call('ZCARD', qb)
if waiting >= tonumber(ARGV[7]) then return {-1, waiting} end
local principal, ttl = ARGV[10], tonumber(ARGV[11])
local wq = waitKey(principal)
redis.call('ZREMRANGEBYSCORE', wq, '-inf', now)
local mine = redis.call('ZCARD', wq)
if ARGV[15] ~= '' and mine >= tonumber(ARGV[15]) then return {-2, mine} end
local v = tonumber(redis.call('GET', P .. ':v') or '0')
local start = math.max(v, tonumber(redis.call('HGET', P .. ':f', principal) or '0'))
redis.call('HSET', P .. ':f', principal, tostring(start + 1 / weight))
redis.call('PEXPIRE', P .. ':f', 3600000)
local member = string.format('%016d', redis.call('INCR', P .. ':n')) .. base
redis.call('ZADD', class == 'batch' and qb or qi, start, member)
local job = jobKey(base)
redis.call('DEL', job)
redis.call('HSET', job, 'queue', P, 'front', front, 'data', ARGV[8], 'tag', tostring(start), 'class', class,
  'at', now, 'member', member, 'px', ARGV[9], 'keyed', ARGV[13], 'principal', principal, 'mc', ARGV[14])
redis.call('PEXPIRE', job, ttl)
redis.call('ZADD', wq, now + ttl, member)
redis.call('PEXPIRE', wq, ttl)
local log, rec = logKey(base), recKey(base)
redis.call('DEL', log, rec)
local fields = {}
for i = 16, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', rec, 'status', 'queued', unpack(fields))
local place = placeOf(class, member)
redis.call('XADD', log, '0-1', 'p', queuedPart(place))
redis.call('PEXPIRE', log, ttl)
redis.call('PEXPIRE', rec, ttl)
redis.call('SET', 'kindling:genid:' .. ARGV[12], base, 'PX', ttl)
return {place, waiting + 1}
`;

/**
 * ARGV: P, taker node, now, batch aging ms, prefix preference ms, window, the taker's free slots' prefix hashes
 * (",a,b,"). Takes the next job whose principal holds fewer slots fleet-wide than its max_concurrent: the
 * interactive head (or an aged batch head with an earlier tag, or the batch head when no interactive job waits),
 * among the first 64 of each class; while the interactive head is younger than the preference time, the job
 * among the first `window` whose prompt shares the longest prefix with a free slot goes first. A job whose front
 * died runs when its client chose its key (it may resume through any node); an anonymous one is dropped, its log
 * ending with an error, since no one is left to read it. Returns
 * {base, front, data, entry id, part, entry id, part, ...} or false.
 */
export const TAKE = `${COMMON}
local taker, now, aging, prefer, window, mine = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]),
  tonumber(ARGV[6]), ARGV[7]
local function field(member, name) return redis.call('HGET', jobKey(baseOf(member)), name) end
local function matchLevel(member)
  local px = field(member, 'px') or ''
  local best = 0
  for hash in string.gmatch(px, '[^,]+') do
    if string.find(mine, ',' .. hash .. ',', 1, true) then
      local level = tonumber(string.match(hash, '^(%d+):')) + 1
      if level > best then best = level end
    end
  end
  return best
end
-- The first 'want' jobs of a class whose principal may take a slot now ({member, tag, member, tag, ...}).
local function eligible(zset, want)
  local found = {}
  local entries = redis.call('ZRANGE', zset, 0, 63, 'WITHSCORES')
  for i = 1, #entries, 2 do
    local job = jobKey(baseOf(entries[i]))
    local principal, cap = unpack(redis.call('HMGET', job, 'principal', 'mc'))
    if not principal or underCap(principal, cap) then
      found[#found + 1] = entries[i]
      found[#found + 1] = entries[i + 1]
      if #found >= want * 2 then break end
    end
  end
  return found
end
for _ = 1, 64 do
  local heads = eligible(qi, window)
  local batch = eligible(qb, 1)
  local zset, member, tag
  if #batch > 0 then
    local at = tonumber(field(batch[1], 'at') or now)
    if #heads == 0 or (now - at >= aging and tonumber(batch[2]) <= tonumber(heads[2])) then
      zset, member, tag = qb, batch[1], batch[2]
    end
  end
  if not zset then
    if #heads == 0 then return false end
    zset, member, tag = qi, heads[1], heads[2]
    if mine ~= ',' and now - tonumber(field(member, 'at') or now) < prefer then
      local bestLevel = matchLevel(member)
      for i = 3, #heads, 2 do
        local level = matchLevel(heads[i])
        if level > bestLevel then bestLevel, member, tag = level, heads[i], heads[i + 1] end
      end
    end
  end
  local base = baseOf(member)
  local job = jobKey(base)
  local front, data, keyed = field(member, 'front'), field(member, 'data'), field(member, 'keyed')
  redis.call('ZREM', zset, member)
  if data and (alive(front) or keyed == '1') then
    redis.call('SET', P .. ':v', tostring(math.max(tonumber(redis.call('GET', P .. ':v') or '0'), tonumber(tag))))
    redis.call('HSET', recKey(base), 'node', taker)
    unwait(job)
    local principal = redis.call('HGET', job, 'principal')
    if principal then holdSlot(taker, principal) end
    -- Not started until the taker's first write (STARTED): if the taker dies first, the job goes back (reclaim).
    redis.call('HSET', job, 'taker', taker)
    redis.call('ZADD', TAKEN, now, base)
    local reply = {base, front, data}
    for _, entry in ipairs(redis.call('XRANGE', logKey(base), '-', '+')) do
      reply[#reply + 1] = entry[1]
      reply[#reply + 1] = entry[2][2]
    end
    return reply
  end
  if data then dropOrphan(base, front) else redis.call('DEL', job) end
end
return false
`;

/** ARGV: P, base. Takes a job out while it still waits: 1, or 0 when a node took it (or it is gone). */
export const WITHDRAW = `${COMMON}
local job = jobKey(ARGV[2])
local member, class, taker = unpack(redis.call('HMGET', job, 'member', 'class', 'taker'))
if not member or taker then return 0 end
unwait(job)
redis.call('DEL', job)
return redis.call('ZREM', class == 'batch' and qb or qi, member)
`;

/**
 * ARGV: P, then base and the id of the last part this node logged for it, for each job it fronts. A job whose
 * place changed gets a new `queued` part, logged only while it still waits and only after that id, so the
 * front's copy and Redis's never differ. First, puts back the jobs whose taker died before starting them (a
 * live node's refresh is what finds them when no one follows them). Returns {waiting, place or 0 (taken: then
 * the taker's node), ...}.
 */
export const PLACES = `${COMMON}
for _, base in ipairs(redis.call('ZRANGE', TAKEN, 0, 63)) do reclaim(base) end
local reply = {redis.call('ZCARD', qi) + redis.call('ZCARD', qb)}
for i = 2, #ARGV, 2 do
  local base, last = ARGV[i], tonumber(ARGV[i + 1])
  local job = jobKey(base)
  local member, taker = unpack(redis.call('HMGET', job, 'member', 'taker'))
  if member and not taker then
    local place = placeOf(redis.call('HGET', job, 'class'), member)
    local log = logKey(base)
    local logged = redis.call('XREVRANGE', log, '+', '-', 'COUNT', 1)
    local previous = logged[1] and string.match(logged[1][2][2], '"position":(%d+)')
    if redis.call('XLEN', log) == last and tonumber(previous) ~= place and place > 0 then
      redis.call('XADD', log, '0-' .. (last + 1), 'p', queuedPart(place))
      reply[#reply + 1] = place
    else
      reply[#reply + 1] = -place
    end
  else
    reply[#reply + 1] = redis.call('HGET', recKey(base), 'node') or ''
  end
end
return reply
`;

/** ARGV: P (unused), base. A reader found the job's node dead: puts the job back if it had not started (reclaim). */
export const RECLAIM = `${COMMON}
return reclaim(ARGV[2])
`;

/**
 * ARGV: P (unused), base, taker, ttl ms, status, server id, then entry id/part pairs. A taken job's first write:
 * it starts only if the job is still the taker's (not put back after its heartbeat expired), and then its parts
 * go in with its record. Returns 1, or 0 when the taker lost it (it must not run: another node will).
 */
export const STARTED = `${COMMON}
local base, taker, ttl = ARGV[2], ARGV[3], tonumber(ARGV[4])
local job = jobKey(base)
if redis.call('HGET', job, 'taker') ~= taker then return 0 end
redis.call('DEL', job)
redis.call('ZREM', TAKEN, base)
local log, rec = logKey(base), recKey(base)
for i = 7, #ARGV, 2 do redis.call('XADD', log, ARGV[i], 'p', ARGV[i + 1]) end
redis.call('HSET', rec, 'node', taker, 'status', ARGV[5])
redis.call('PEXPIRE', log, ttl)
redis.call('PEXPIRE', rec, ttl)
redis.call('PEXPIRE', 'kindling:genid:' .. ARGV[6], ttl)
return 1
`;

/**
 * ARGV: P, node, principal, its max_concurrent ('' for none). A request that may start on this node at once: when
 * nothing waits anywhere (the fleet's order holds) and its principal is under its max_concurrent fleet-wide, the
 * slot is counted as the principal's and the reply is {1, waiting}; else {0, waiting}.
 */
export const CLAIM = `${COMMON}
local waiting = redis.call('ZCARD', qi) + redis.call('ZCARD', qb)
if waiting > 0 or not underCap(ARGV[3], ARGV[4]) then return {0, waiting} end
holdSlot(ARGV[2], ARGV[3])
return {1, 0}
`;

/**
 * ARGV: P (unused), node, then principal/count pairs: this node's own count of the slots each principal holds
 * here, which replaces what Redis has (a lost release or a claim whose answer never came is mended here).
 */
export const RUNNING = `${COMMON}
local key = runKey(ARGV[2])
redis.call('DEL', key)
if #ARGV < 4 then return 0 end
local counts = {}
for i = 3, #ARGV do counts[#counts + 1] = ARGV[i] end
redis.call('HSET', key, unpack(counts))
redis.call('PEXPIRE', key, RUN_TTL)
redis.call('SADD', RUN_NODES, ARGV[2])
return 1
`;

/** ARGV: P (unused), node, principal. One of the principal's generations on this node ended. */
export const RELEASE = `${COMMON}
local key = runKey(ARGV[2])
if tonumber(redis.call('HINCRBY', key, ARGV[3], -1)) <= 0 then redis.call('HDEL', key, ARGV[3]) end
return 1
`;

/**
 * ARGV: P (unused), base, message. A taken job this node cannot run (its data does not decode here: another
 * version wrote it): it ends with an error part naming the cause, rather than staying taken until it expires.
 */
export const UNRUNNABLE = `${COMMON}
local base = ARGV[2]
unwait(jobKey(base))
redis.call('DEL', jobKey(base))
redis.call('ZREM', TAKEN, base)
appendPart(base, ARGV[3])
redis.call('HSET', recKey(base), 'status', 'done')
return 1
`;

/**
 * ARGV: P (unused), base, node, ttl ms, status, server id, n, then n record field/value strings, then entry
 * id/part pairs. The first write of a generation with a client key that started on this node: it goes in only
 * when no other live node holds the key (two requests with one key that started on two nodes at once run only
 * once; the later one stops). A key whose generation ended starts again at 0-1. Returns 1, or the holder's node.
 */
export const FRESH = `${COMMON}
local base, node, ttl, status, id, n = ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5], ARGV[6], tonumber(ARGV[7])
local holder = liveHolder(base, node, id)
if holder then return holder end
local log, rec = logKey(base), recKey(base)
redis.call('DEL', log, rec)
local fields = {}
for i = 8, 7 + n do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', rec, 'status', status, unpack(fields))
for i = 8 + n, #ARGV, 2 do redis.call('XADD', log, ARGV[i], 'p', ARGV[i + 1]) end
redis.call('PEXPIRE', log, ttl)
redis.call('PEXPIRE', rec, ttl)
redis.call('SET', 'kindling:genid:' .. id, base, 'PX', ttl)
return 1
`;
