/* The Lua modules of lua/ compiled into the binary (see cmake/embed_lua.cmake). */
#ifndef WX_LUA_BUNDLE_H
#define WX_LUA_BUNDLE_H
#include <stddef.h>

struct wxlua_bundle_file {
    const char *module;    /* "wx.url" for lua/wx/url.lua */
    const char *chunkname; /* "@lua/wx/url.lua", for tracebacks */
    const char *source;
    size_t len;
};

extern const struct wxlua_bundle_file wxlua_bundle_files[]; /* ends with module == NULL */

#endif
