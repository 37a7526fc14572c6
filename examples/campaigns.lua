-- A gateway with the example campaigns (examples/campaigns/*.lua), pointed
-- at the sandbox: `build/wxgate sandbox` in one terminal, then
--   WX_DEMO_SECRET=sandbox_demo_secret WX_WEB_SECRET=sandbox_web_secret \
--   WX_MP_SECRET=sandbox_mp_secret build/wxgate run -c examples/campaigns.lua
-- (and the WXGATE_*_SECRET / WXGATE_API_KEY keys, 16+ random characters).
return {
  listen = "127.0.0.1:8080",
  public_url = "http://127.0.0.1:8080",
  cookie_secret = { env = "WXGATE_COOKIE_SECRET" },
  ticket_secret = { env = "WXGATE_TICKET_SECRET" },
  api_keys = { { env = "WXGATE_API_KEY" } },
  require_wechat_browser = false,
  wechat = { open_base = "http://127.0.0.1:9000", api_base = "http://127.0.0.1:9000" },
  apps = {
    demo = { appid = "wx_sandbox_demo", secret = { env = "WX_DEMO_SECRET" } },
    -- an Open Platform website app (PC QR login) and a Mini Program, bound to
    -- the same Open Platform account as demo: one unionid per person
    web = { appid = "wx_sandbox_web", kind = "website", secret = { env = "WX_WEB_SECRET" } },
    mp = { appid = "wx_sandbox_mp", kind = "miniprogram", secret = { env = "WX_MP_SECRET" } },
  },
  default_campaign = "spring",
  -- The environment variables the scripts read with wx.getenv.
  lua = { env = { "GAME_BACKEND", "GAME_BACKEND_KEY", "STATIC_PAGE_KEY" } },
  campaigns = {
    spring = { app = "demo", scope = "snsapi_userinfo", allow = { "https://h5.example.com/spring/" },
               script = "campaigns/ab_redirect.lua" },
    game = { app = "demo", scope = "snsapi_userinfo", allow = { "https://game.example.com/" },
             script = "campaigns/game_account.lua" },
    static = { app = "demo", scope = "snsapi_base", allow = { "https://static.example.com/" },
               script = "campaigns/signed_static.lua" },
    -- H5 in WeChat, the desktop site (QR login) and the Mini Program: one player
    oneuser = { app = "demo", website_app = "web", miniprogram_apps = { "mp" },
                scope = "snsapi_userinfo", allow = { "https://event.example.com/" },
                script = "campaigns/one_user.lua" },
  },
}
