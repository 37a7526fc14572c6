/* The gateway config the handler tests share: one app (its secret from the
 * environment), a campaign without a script, an API key. */
#ifndef WX_TEST_HARNESS_CONFIG_H
#define WX_TEST_HARNESS_CONFIG_H
#include <stdlib.h>

#define TEST_API_KEY "api-key-for-unit-tests-0123456789"

static const char GATEWAY_CONFIG[] =
    "return { listen = '127.0.0.1:1', public_url = 'https://login.example.com',\n"
    "  cookie_secret = 'cookie-secret-0123456789abcdef',\n"
    "  ticket_secret = 'ticket-secret-0123456789abcdef',\n"
    "  api_keys = { '" TEST_API_KEY "' }, require_wechat_browser = false,\n"
    "  wechat = { open_base = 'http://127.0.0.1:9', api_base = 'http://127.0.0.1:9' },\n"
    "  apps = { main = { appid = 'wx_unit', secret = { env = 'WX_UNIT_SECRET' } } },\n"
    "  campaigns = { spring = { app = 'main', allow = { 'https://h5.example.com/spring/' } } } }\n";

static void set_test_secret(void) { setenv("WX_UNIT_SECRET", "unit-app-secret-0123456789", 1); }

#endif
