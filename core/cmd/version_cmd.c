/* `wxgate version`: the version, the git revision the binary was built from
 * (cmake/git_revision.cmake writes it at every build), and the versions of
 * the libraries it runs with, asked of the libraries themselves at run time
 * where they can say (a bug report then names what actually ran, not what
 * the build machine had). */
#include "wxgate_revision.h"

#include <curl/curl.h>
#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <lauxlib.h>
#include <lualib.h>
#include <openssl/crypto.h>
#include <stdio.h>

#ifndef WXGATE_VERSION
#error "WXGATE_VERSION comes from project(VERSION) in CMakeLists.txt"
#endif

/* LuaJIT's own jit.version: the library's, not the header's. */
static void print_luajit(void)
{
    lua_State *L = luaL_newstate();
    if (!L) {
        printf("LuaJIT: unknown (out of memory)\n");
        return;
    }
    luaL_openlibs(L);
    lua_getglobal(L, "jit");
    lua_getfield(L, -1, "version");
    printf("LuaJIT: %s\n", lua_isstring(L, -1) ? lua_tostring(L, -1) : "unknown");
    lua_close(L);
}

int version_main(void)
{
    printf("wxgate %s\n", WXGATE_VERSION);
    printf("git revision: %s\n", WXGATE_GIT_REVISION);
    printf("libevent: %s\n", event_get_version());
    print_luajit();
    printf("libcurl: %s\n", curl_version_info(CURLVERSION_NOW)->version);
    printf("OpenSSL: %s\n", OpenSSL_version(OPENSSL_VERSION));
    /* hiredis has no run-time version call; its soname (libhiredis.so.0.14)
     * pins the release the headers describe. */
    printf("hiredis: %d.%d.%d\n", HIREDIS_MAJOR, HIREDIS_MINOR, HIREDIS_PATCH);
    return 0;
}
