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
  -- The sandbox's built-in apps (see lua/sandbox/config.lua): the official
  -- account, the website app (PC QR login) and the Mini Program, all bound
  -- to one Open Platform account. Their secrets reach the config through
  -- the environment, as a real deployment's do.
  env = {
    WXGATE_DEMO_APP_SECRET = "sandbox_demo_secret",
    WXGATE_DEMO_WEB_SECRET = "sandbox_web_secret",
    WXGATE_DEMO_MP_SECRET = "sandbox_mp_secret",
  },
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
    apps = {
      demo = { appid = "wx_sandbox_demo", secret = { env = "WXGATE_DEMO_APP_SECRET" } },
      web = { appid = "wx_sandbox_web", kind = "website",
              secret = { env = "WXGATE_DEMO_WEB_SECRET" } },
      mp = { appid = "wx_sandbox_mp", kind = "miniprogram",
             secret = { env = "WXGATE_DEMO_MP_SECRET" } },
    },
    default_campaign = "demo",
    campaigns = {
      demo = {
        app = "demo",
        website_app = "web",     -- desktop browsers log in by QR code
        miniprogram_apps = "mp", -- POST /api/mp/login lands here too
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
    for _, prefix in ipairs { "/connect", "/sns", "/cgi-bin", "/wxa", "/_sandbox" } do
      cfg.routes[prefix] = { module = "sandbox", options = { listen = o.listen } }
    end
  end
  return cfg, DEMO
end
