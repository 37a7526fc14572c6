-- The config of `wxgate demo`, built from its command line: the gateway, the
-- example campaign "demo" (examples/demo/) and, unless --sandbox points at a
-- running one, the sandbox on the same port under WeChat's own paths.
--
-- The keys are fixed, documented development values, so that several demo
-- instances on one Redis agree. Never use them in production: `wxgate run`
-- has no defaults for keys.
local DEMO = {
  cookie_secret = "wxgate-demo-cookie-secret-NOT-FOR-PRODUCTION",
  ticket_secret = "wxgate-demo-ticket-secret-NOT-FOR-PRODUCTION",
  token_key = "wxgate-demo-token-key-NOT-FOR-PRODUCTION",
  api_key = "wxgate-demo-api-key-NOT-FOR-PRODUCTION",
  -- The sandbox's built-in demo app (see lua/sandbox/config.lua).
  appid = "wx_sandbox_demo",
  app_secret = "sandbox_demo_secret",
}

return function(o)
  local cfg = {
    listen = o.listen,
    admin_listen = o.dashboard, -- /dashboard and /metrics, on their own port
    public_url = o.public_url,
    workers = o.workers,
    store = o.store,
    require_wechat_browser = false,
    cookie_secret = DEMO.cookie_secret,
    ticket_secret = DEMO.ticket_secret,
    token_key = DEMO.token_key,
    api_keys = { DEMO.api_key },
    wechat = { open_base = o.sandbox, api_base = o.sandbox, ca_file = o.ca_file },
    apps = { demo = { appid = DEMO.appid, secret = { env = "WXGATE_DEMO_APP_SECRET" } } },
    default_campaign = "demo",
    campaigns = {
      demo = {
        app = "demo",
        scope = "snsapi_userinfo",
        scope_override = true,
        allow = { o.public_url .. "/demo/" },
      },
    },
    routes = { ["/demo"] = o.examples .. "/demo/app.lua" },
    -- What the demo backend reads with wx.getenv (set by `wxgate demo`).
    lua = { env = { "WXGATE_DEMO_GATEWAY", "WXGATE_DEMO_API_KEY" } },
  }
  if o.embedded_sandbox then
    for _, prefix in ipairs { "/connect", "/sns", "/cgi-bin", "/_sandbox" } do
      cfg.routes[prefix] = { module = "sandbox", options = { listen = o.listen } }
    end
  end
  return cfg, DEMO
end
