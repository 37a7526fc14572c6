-- /etc/wxgate/wxgate.lua: the config of the wxgate service (wxgate(8)).
-- A Lua file that returns a table. After editing it:
--
--   wxgate check -c /etc/wxgate/wxgate.lua && systemctl reload wxgate
--
-- (`systemctl reload` runs the same check first: a broken config never
-- replaces a working one.) listen, admin_listen, workers and store take
-- effect at the next `systemctl restart wxgate`.
--
-- Secrets are never written here. { env = "NAME" } reads NAME from the
-- environment or, failing that, from env_file: /etc/wxgate/secrets.env,
-- mode 0640, owner root, group wxgate. The package generated the keys in it.
-- Every key is described in /usr/share/doc/wxgate/README.md.gz
-- ("Configuration"); more examples are in /usr/share/wxgate/examples/.
return {
  -- The public listener, usually behind a reverse proxy that terminates TLS.
  -- A port below 1024 needs CAP_NET_BIND_SERVICE: see the comment in
  -- /lib/systemd/system/wxgate.service.
  listen = "127.0.0.1:8080",
  -- Operators' endpoints (/metrics for Prometheus) on a listener of their
  -- own; the public listener then answers 404 for them. /healthz stays on
  -- both, for load balancers.
  admin_listen = "127.0.0.1:9145",
  -- The URL users and WeChat reach the gateway at: WeChat calls back
  -- PUBLIC_URL/callback, so its host must be a registered callback domain
  -- of the Official Account.
  public_url = "http://127.0.0.1:8080",
  -- workers = 4,                    -- default: one per core
  store = "memory",                  -- or "redis://127.0.0.1:6379/0" for several instances
  log_level = "info",                -- JSON lines on stderr: journalctl -u wxgate

  env_file = "secrets.env",          -- relative to this file: /etc/wxgate/secrets.env
  cookie_secret = { env = "WXGATE_COOKIE_SECRET" },
  ticket_secret = { env = "WXGATE_TICKET_SECRET" },
  token_key = { env = "WXGATE_TOKEN_KEY" },
  -- Campaign and game backends send one of these as "Authorization: Bearer KEY".
  api_keys = { { env = "WXGATE_API_KEY" } },

  -- wechat = {
  --   -- WeChat's own servers by default. For a trial run against
  --   -- `wxgate sandbox -l 127.0.0.1:9000` (the appid below is its test app):
  --   open_base = "http://127.0.0.1:9000",
  --   api_base = "http://127.0.0.1:9000",
  -- },

  apps = {
    -- Your Official Account: its appid here, its AppSecret as
    -- WXGATE_APP_SECRET in /etc/wxgate/secrets.env. As shipped, this is the
    -- WeChat sandbox's test app, which real WeChat refuses.
    main = { appid = "wx_sandbox_demo", secret = { env = "WXGATE_APP_SECRET" } },
  },

  campaigns = {
    -- GET /auth?campaign=example&return=URL logs the user in and sends them
    -- to URL with a one-time wx_ticket, if URL starts with an allowed prefix.
    example = {
      app = "main",
      scope = "snsapi_userinfo",     -- or "snsapi_base": silent, openid only
      allow = { "http://127.0.0.1:8080/" },
      -- script = "/etc/wxgate/campaigns/example.lua",  -- hooks: see the examples
    },
  },
}
