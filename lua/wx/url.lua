-- wx.url: URL escaping, query strings, and a strict parser/builder for the
-- URLs the gateway redirects to (absolute "scheme://authority/..." URLs and
-- path-absolute "/..." references). parse() and build() are inverses;
-- add_query() appends parameters while keeping the fragment last.
--
-- Escaping and the authority (user, host, port) come from the gateway's one
-- URL module (core/common/url.c, over libcurl's curl_url, through
-- wx.urlcore), so that a script reads a URL's host exactly as the gateway's
-- allow-lists do; this file adds the strictness rules and keeps the path,
-- query and fragment as written.

local core = require "wx.urlcore"
local concat, sort = table.concat, table.sort
local tonumber, tostring, type, pairs, ipairs, error = tonumber, tostring, type, pairs, ipairs, error

local _M = {}

-- Everything but RFC 3986 unreserved characters is percent-encoded
-- (uppercase hex), so the result is safe in any URL component.
function _M.escape(s)
  local t = type(s)
  if t ~= "string" and t ~= "number" then
    error("bad argument #1 to 'escape' (string expected, got " .. t .. ")", 2)
  end
  return core.escape(tostring(s))
end

-- Decodes %XX sequences; malformed ones are kept literally. With is_query,
-- '+' means a space (application/x-www-form-urlencoded).
function _M.unescape(s, is_query)
  if type(s) ~= "string" then
    error("bad argument #1 to 'unescape' (string expected, got " .. type(s) .. ")", 2)
  end
  if is_query then
    s = s:gsub("%+", " ")
  end
  return core.unescape(s)
end

-- Returns two tables: name -> first value, and the ordered list of all
-- {name, value} pairs. Empty segments are skipped; "a" alone means a = "".
function _M.parse_query(qs)
  if type(qs) ~= "string" then
    error("bad argument #1 to 'parse_query' (string expected, got " .. type(qs) .. ")", 2)
  end
  local map, list = {}, {}
  for seg in qs:gmatch("[^&]+") do
    local k, v = seg:match("^([^=]*)=(.*)$")
    if not k then
      k, v = seg, ""
    end
    k, v = _M.unescape(k, true), _M.unescape(v, true)
    list[#list + 1] = { k, v }
    if map[k] == nil then
      map[k] = v
    end
  end
  return map, list
end

local function check_value(v, k)
  local t = type(v)
  if t ~= "string" and t ~= "number" and t ~= "boolean" then
    error("query parameter '" .. tostring(k) .. "' has a " .. t .. " value", 4)
  end
  return tostring(v)
end

-- params: a map (emitted with keys sorted, for determinism) or an array of
-- {name, value} pairs (emitted in order). Returns the list of "k=v" parts.
local function query_parts(params)
  if type(params) ~= "table" then
    error("query parameters must be a table, got " .. type(params), 3)
  end
  local parts = {}
  if params[1] ~= nil then
    for _, kv in ipairs(params) do
      if type(kv) ~= "table" or kv[1] == nil then
        error("query parameter list entries must be {name, value}", 3)
      end
      parts[#parts + 1] = { tostring(kv[1]), check_value(kv[2], kv[1]) }
    end
  else
    for k, v in pairs(params) do
      parts[#parts + 1] = { tostring(k), check_value(v, k) }
    end
    sort(parts, function(a, b) return a[1] < b[1] end)
  end
  return parts
end

local function join_parts(parts)
  local out = {}
  for i, kv in ipairs(parts) do
    out[i] = _M.escape(kv[1]) .. "=" .. _M.escape(kv[2])
  end
  return concat(out, "&")
end

function _M.encode_query(params)
  return join_parts(query_parts(params))
end

-- parse(url) -> {scheme, user, host, port, path, query, fragment, args,
-- arg_pairs} or nil, err.
--   * absolute: scheme "://" [user "@"] host [":" port] path ["?" q] ["#" f];
--     scheme and host are lowercased; host is a DNS name, IPv4 or a
--     bracketed IPv6 literal ("[::1]", brackets kept); port 1..65535 or nil
--     when absent; path is "" or starts with "/".
--   * path-absolute "/p?q#f": scheme, user, host and port are nil.
-- Refused: control characters, spaces, backslashes (browsers read "\" as
-- "/", a classic open-redirect trick), scheme-relative "//host", a missing
-- scheme, more than one "@", empty hosts and bad ports. Bytes >= 0x80 are
-- allowed after the authority. query/fragment are nil when their delimiter
-- is absent and raw (still escaped); args/arg_pairs are parse_query(query).
function _M.parse(url)
  if type(url) ~= "string" then
    return nil, "url must be a string"
  end
  if url == "" then
    return nil, "empty url"
  end
  if url:find("[%z\1-\32\127\\]") then
    return nil, "url contains a control character, space or backslash"
  end

  local t = {}
  local rest
  if url:sub(1, 1) == "/" then
    if url:sub(2, 2) == "/" then
      return nil, "url has no scheme"
    end
    rest = url
  else
    local scheme, after = url:match("^([A-Za-z][A-Za-z0-9+.%-]*)://(.*)$")
    if not scheme then
      return nil, "url has no scheme"
    end
    t.scheme = scheme:lower()

    local auth = after:match("^[^/?#]*")
    rest = after:sub(#auth + 1)
    local user, hostport = auth:match("^(.*)@(.*)$")
    if user then
      if user:find("@", 1, true) then
        return nil, "url has more than one '@'"
      end
      t.user = user
    else
      hostport = auth
    end
    if auth:find("[\128-\255]") then
      return nil, "url has non-ASCII bytes in its authority"
    end
    -- The host and port as curl_url reads them; they must be written the
    -- way they are read (no empty host, no 0x7f.1 for 127.0.0.1).
    local parts, why = core.split(url)
    if not parts or not parts.host or parts.host == "" then
      return nil, "url has an invalid host (" .. tostring(why or "none") .. ")"
    end
    local host = parts.host:lower()
    local port_text = hostport:sub(#host + 1)
    if hostport:sub(1, #host):lower() ~= host or parts.zone then
      return nil, "url has an invalid host"
    end
    if port_text ~= "" and port_text ~= ":" then
      local n = tonumber(port_text:match("^:(%d+)$"))
      if not n or n < 1 or n > 65535 or tostring(n) ~= parts.port then
        return nil, "url has an invalid port"
      end
      t.port = n
    end
    t.host = host
  end

  local path, q, f = rest:match("^([^?#]*)(.*)$")
  t.path = path
  if q:sub(1, 1) == "?" then
    local query, frag = q:match("^%?([^#]*)(.*)$")
    t.query, q = query, frag
  end
  if q ~= "" then
    t.fragment = q:sub(2)
  end
  t.args, t.arg_pairs = _M.parse_query(t.query or "")
  return t
end

-- build(t): the inverse of parse(). Uses t.query (a raw query string); args
-- are derived data and ignored. Without t.host the result is a path-absolute
-- reference.
function _M.build(t)
  if type(t) ~= "table" then
    error("bad argument #1 to 'build' (table expected, got " .. type(t) .. ")", 2)
  end
  local out = {}
  if t.host then
    if type(t.scheme) ~= "string" or t.scheme == "" then
      error("url.build: a host needs a scheme", 2)
    end
    out[#out + 1] = t.scheme .. "://"
    if t.user then
      out[#out + 1] = t.user .. "@"
    end
    out[#out + 1] = t.host
    if t.port then
      out[#out + 1] = ":" .. tostring(t.port)
    end
  end
  out[#out + 1] = t.path or ""
  if t.query then
    out[#out + 1] = "?" .. t.query
  end
  if t.fragment then
    out[#out + 1] = "#" .. t.fragment
  end
  return concat(out)
end

-- add_query(url, params) -> new url or nil, err. Existing parameters named
-- in params are dropped, the others keep their original (raw) text and
-- order, the new ones are appended (params as for encode_query), and the
-- fragment stays last: "https://a.com/p#/spa" + {wx_ticket = "T"} ->
-- "https://a.com/p?wx_ticket=T#/spa".
function _M.add_query(url, params)
  local ok, err = _M.parse(url)
  if not ok then
    return nil, err
  end
  return core.set_query(url, join_parts(query_parts(params)))
end

return _M
