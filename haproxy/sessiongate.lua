-- sessiongate for HAProxy 2.6+: the authorization check (what nginx's auth_request does) and the
-- body-less session and login endpoints, on HAProxy's built-in HTTP client (core.httpclient).
-- Loaded by haproxy.cfg (lua-load-per-thread); no global state, no third-party module.
--
-- Both read sessiongate's address (host:port) from the transaction variable txn.sg_address.
--
-- lua.sessiongate_auth "<protected headers>" (http-request action)
--   Asks sessiongate's /auth about the request, describing it with headers HAProxy sets (the
--   client's own X-Original-*, X-Forwarded-*, X-Real-IP and X-Request-Id never reach /auth).
--   Then, whatever the answer, removes every protected header from the request in every
--   spelling (any case, `_` or `.` for `-`: x_user_id, X.User.Id), and on an allow sets them,
--   Cookie and Authorization from the answer alone. Its verdict is in transaction variables
--   that haproxy.cfg acts on; txn.sg_status is "200" only for an allow sessiongate gave:
--     txn.sg_status            sessiongate's status ("200", "401", "403", or "400"/"431" for a
--                              request it could not read), or "error"
--     txn.sg_location          Location of a 401 (the login URL for a browser navigation)
--     txn.sg_www_authenticate  WWW-Authenticate of a 401 or 403
--     txn.sg_set_cookie        Set-Cookie of an allow (a rotated session's new cookie)
--
-- lua.sessiongate_endpoint, lua.sessiongate_backchannel (http-request use-service)
--   Pass one of sessiongate's own endpoints (/~session, /~login, /~logout, ...) to it and hand
--   its answer back: the first without the request body, the second with it.

-- Headers HAProxy describes the request with: the client's copies are never passed on.
local function set_by_proxy(name)
  return name:find('^x%-original%-') ~= nil
    or name:find('^x%-forwarded%-') ~= nil
    or name == 'x-real-ip'
    or name == 'x-request-id'
    or name == 'forwarded'
end

-- Hop-by-hop and framing headers: never copied between the two connections.
local HOP = {
  ['host'] = true, ['connection'] = true, ['keep-alive'] = true, ['proxy-connection'] = true,
  ['te'] = true, ['trailer'] = true, ['transfer-encoding'] = true, ['upgrade'] = true,
  ['content-length'] = true, ['expect'] = true,
}

-- The name a header folds onto, as sessiongate folds it: lower case, `_` and `.` read as `-`,
-- spaces dropped.
local function canonical(name)
  return (name:lower():gsub('[_.]', '-'):gsub('%s', ''))
end

-- HAProxy's header tables are indexed from 0; the HTTP client wants 1-based lists.
local function values(t)
  local out, i = {}, 0
  while t[i] ~= nil do
    out[#out + 1] = t[i]
    i = i + 1
  end
  return out
end

local function first(headers, name)
  local v = headers[name]
  return v and v[0]
end

-- "X-User-Id X-User-Roles ..." from haproxy.cfg, parsed once per distinct argument.
local parsed_lists = {}
local function protected_list(arg)
  local list = parsed_lists[arg]
  if list then return list end
  list = { names = {}, canonical = {} }
  for name in arg:gmatch('[^%s,]+') do
    list.names[#list.names + 1] = name
    list.canonical[canonical(name)] = true
  end
  parsed_lists[arg] = list
  return list
end

local function scheme_of(fetches)
  return fetches:ssl_fc() == true and 'https' or 'http'
end

-- A slow sessiongate is an error, never an allow. HAProxy 2.6's client makes up to 4 attempts
-- (its retries are fixed: a refused connection is retried 3 times, 1s apart; a timed-out one at
-- once), so each attempt waits this long (milliseconds): a hung sessiongate costs up to ~4s.
-- sessiongate itself answers /auth within its store's timeouts (100ms commands by default).
local AUTH_TIMEOUT_MS = 1000
-- The login endpoints wait for the OpenID provider (sessiongate gives each of its requests 5s):
-- room for a token exchange, a key fetch and a user-info request.
local ENDPOINT_TIMEOUT_MS = 20000

core.register_action('sessiongate_auth', { 'http-req' }, function(txn, protected)
  local list = protected_list(protected)
  local address = txn:get_var('txn.sg_address')
  local http = txn.http
  local headers = http:req_get_headers()

  local out = {}
  for name, v in pairs(headers) do
    if not HOP[name] and not set_by_proxy(name) then out[name] = values(v) end
  end
  local host = first(headers, 'host')
  if host then
    out['host'] = { host }
    out['x-forwarded-host'] = { host }
  end
  out['x-original-method'] = { txn.f:method() }
  out['x-original-uri'] = { txn.sf:pathq() }
  out['x-forwarded-proto'] = { scheme_of(txn.f) }
  out['x-forwarded-for'] = { txn.f:src() }
  out['x-real-ip'] = { txn.f:src() }
  out['x-request-id'] = { txn.f:unique_id() }

  -- Any failure below (no answer, a Lua error) leaves txn.sg_status unset: haproxy.cfg answers
  -- 500 to anything but "200".
  local ok, res = address ~= nil, 'txn.sg_address is not set'
  if ok then ok, res = pcall(function()
    return core.httpclient():get { url = 'http://' .. address .. '/auth', headers = out, timeout = AUTH_TIMEOUT_MS }
  end) end

  -- The client's copies of protected headers go, in every spelling, whatever the answer.
  for name in pairs(headers) do
    if list.canonical[canonical(name)] then http:req_del_header(name) end
  end

  -- 400 and 431: sessiongate could not read the request (HAProxy passes bytes such as NUL in a
  -- header value that sessiongate's HTTP parser refuses): the client gets that status.
  if ok and type(res) == 'table' and (res.status == 400 or res.status == 431) then
    txn:set_var('txn.sg_status', tostring(res.status))
    return
  end
  if not ok or type(res) ~= 'table' or (res.status ~= 200 and res.status ~= 401 and res.status ~= 403) then
    txn:set_var('txn.sg_status', 'error')
    if not ok then txn:Warning('sessiongate: ' .. tostring(res)) end
    return
  end
  local answer = res.headers or {}
  local status = res.status

  if status ~= 200 then
    local location, challenge = first(answer, 'location'), first(answer, 'www-authenticate')
    if location and status == 401 then txn:set_var('txn.sg_location', location) end
    if challenge then txn:set_var('txn.sg_www_authenticate', challenge) end
    txn:set_var('txn.sg_status', tostring(status))
    return
  end

  for _, name in ipairs(list.names) do
    local v = first(answer, name:lower())
    if v ~= nil and v ~= '' then http:req_set_header(name, v) end
  end
  -- The application never gets sessiongate's credential: the answer names the Cookie and
  -- Authorization it gets (the client's own without sessiongate's); absent or empty removes.
  for _, name in ipairs({ 'Cookie', 'Authorization' }) do
    local v = first(answer, name:lower())
    if v ~= nil and v ~= '' then
      http:req_set_header(name, v)
    else
      http:req_del_header(name)
    end
  end
  local set_cookie = first(answer, 'set-cookie')
  if set_cookie then txn:set_var('txn.sg_set_cookie', set_cookie) end
  txn:set_var('txn.sg_status', '200')
end, 1)

-- Headers of sessiongate's endpoint answers the client gets.
local ANSWER_HOP = { ['connection'] = true, ['keep-alive'] = true, ['transfer-encoding'] = true, ['content-length'] = true }

local function endpoint(applet, with_body)
  local address = applet:get_var('txn.sg_address')
  local out = {}
  for name, v in pairs(applet.headers) do
    if not HOP[name] and not set_by_proxy(name) and (with_body or name ~= 'content-type') then out[name] = values(v) end
  end
  -- The client's Host, port included: sessiongate builds the callback URL and checks `rd` with it.
  local host = first(applet.headers, 'host')
  if host then out['host'] = { host } end
  out['x-forwarded-proto'] = { scheme_of(applet.f) }
  out['x-forwarded-for'] = { applet.f:src() }
  out['x-request-id'] = { applet.f:unique_id() }

  local method = applet.method
  local call = ({ GET = 'get', POST = 'post', DELETE = 'delete' })[method]
  local ok, res = false, 'method ' .. tostring(method) .. ' is not passed to sessiongate'
  if call and address then
    -- The raw path and query (a service has no HTTP sample fetches such as pathq).
    local target = applet.path .. ((applet.qs ~= nil and applet.qs ~= '') and ('?' .. applet.qs) or '')
    local request = { url = 'http://' .. address .. target, headers = out, timeout = ENDPOINT_TIMEOUT_MS }
    -- The body is read only where it is passed (the client's is otherwise left unread).
    if with_body then request.body = applet:receive() end
    ok, res = pcall(function()
      local hc = core.httpclient()
      return hc[call](hc, request)
    end)
  end
  if not ok or type(res) ~= 'table' or not res.status or res.status == 0 then
    if not ok then core.Warning('sessiongate: ' .. tostring(res)) end
    applet:set_status(500)
    applet:add_header('content-length', '0')
    applet:start_response()
    return
  end
  applet:set_status(res.status, res.reason)
  for name, v in pairs(res.headers or {}) do
    if not ANSWER_HOP[name] then
      for _, value in ipairs(values(v)) do applet:add_header(name, value) end
    end
  end
  local body = res.body or ''
  applet:add_header('content-length', tostring(#body))
  applet:start_response()
  if #body > 0 then applet:send(body) end
end

core.register_service('sessiongate_endpoint', 'http', function(applet) endpoint(applet, false) end)
core.register_service('sessiongate_backchannel', 'http', function(applet) endpoint(applet, true) end)
