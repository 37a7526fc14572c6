/* Unit tests for core/http/http_parse.c, the strict HTTP/1.1 request parser.
 *
 * Request heads (http_parse_head):
 *   - valid heads: GET with Host, HTTP/1.0 without Host, POST with
 *     Content-Length, chunked, the four request-target forms, up to two
 *     leading empty lines, OWS trimming, obs-text in values, extension
 *     methods, as many fields as the limit allows, the keep-alive rules of
 *     HTTP/1.0 and 1.1 (Connection token lists), Expect: 100-continue, and
 *     identical duplicate Content-Lengths; each is checked field by field and
 *     against general invariants (the fields lie inside the head, names are
 *     tokens, values are trimmed, framing is never both CL and chunked);
 *   - hostile heads, each refused with its status: differing or malformed
 *     Content-Lengths, CL with TE, any Transfer-Encoding other than a single
 *     final "chunked" (501 for codings before it), TE in HTTP/1.0, obs-fold,
 *     whitespace before a colon, two Hosts, no Host in 1.1, invalid Host,
 *     NUL and other control bytes, bare CR, bare LF, empty field names,
 *     invalid methods, HTTP versions other than 1.0/1.1 (505, the HTTP/2
 *     preface included), HTTP/0.9, fragments, unsupported Expect (417);
 *   - the three smuggling requests of the issue, at the parser level;
 *   - the limits: 414 for a long target and 431 for a big head, both also
 *     while the head is still incomplete, 431 for too many fields, exact
 *     boundaries accepted;
 *   - incremental feeding: every head of the table fed one byte at a time
 *     (each prefix in an exact-size heap buffer, so that a read past the end
 *     is caught under AddressSanitizer) returns 0 until the head is complete
 *     and then exactly what the whole buffer gives; hostile heads return 0
 *     and then their refusal, never a different one and never "complete".
 * Chunked bodies (http_chunked_decode): valid bodies (extensions, trailers,
 * upper and lower case hex, leading zeros, binary data) fed whole, byte by
 * byte and split at every offset, with the bytes after the final CRLF left
 * unconsumed; refusals (bad sizes, "3 garbage", missing or extra data, 17 hex
 * digits, 413 past out_cap, bare LF or CR, bad trailers, 431 for trailers
 * too large), each with its status, whole and byte by byte.
 *
 * The table of heads below is also read by test_http_parse_diff.c (it
 * includes this file with HTTP_PARSE_CASES_ONLY defined), so that the
 * differential test runs over the same heads. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http_parse.h"

/* ---- the table of heads ------------------------------------------------ */

struct http_case {
    const char *name;
    const char *head; /* the head (accepted) or the whole input (refused) */
    size_t head_len;
    const char *rest; /* bytes after an accepted head: a body, a next request */
    size_t rest_len;
    int status; /* 0: accepted, with length head_len; else the refusal */
};

#define OK(name, head, rest)                                                                       \
    {                                                                                              \
        name, head, sizeof(head) - 1, rest, sizeof(rest) - 1, 0                                    \
    }
#define NO(name, status, head)                                                                     \
    {                                                                                              \
        name, head, sizeof(head) - 1, "", 0, status                                                \
    }

/* The limits the table is parsed with. */
static const struct http_parse_limits http_case_limits = {8192, 1024, 32};

#define H11 "Host: x\r\n"

static const struct http_case http_cases[] = {
    /* valid heads */
    OK("get_host",
       "GET /index.html?a=1&b=%20 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t/1\r\n\r\n", ""),
    OK("http10_no_host", "GET / HTTP/1.0\r\n\r\n", ""),
    OK("http10_host", "GET /x HTTP/1.0\r\nHost: example.com\r\n\r\n", ""),
    OK("post_content_length",
       "POST /api/ticket HTTP/1.1\r\nHost: gw.example.com\r\nContent-Type: application/json\r\n"
       "Content-Length: 13\r\n\r\n",
       "{\"ticket\":1}\n"),
    OK("content_length_zero", "POST /p HTTP/1.1\r\n" H11 "Content-Length: 0\r\n\r\n", ""),
    OK("content_length_leading_zeros", "POST /p HTTP/1.1\r\n" H11 "Content-Length: 007\r\n\r\n",
       "abcdefg"),
    OK("content_length_18_digits",
       "POST /p HTTP/1.1\r\n" H11 "Content-Length: 999999999999999999\r\n\r\n", ""),
    OK("content_length_ows", "POST /p HTTP/1.1\r\n" H11 "Content-Length:\t 5 \t\r\n\r\n", "hello"),
    OK("content_length_duplicate_identical",
       "POST /p HTTP/1.1\r\n" H11 "Content-Length: 5\r\ncontent-length: 5\r\n\r\n", "hello"),
    OK("chunked", "POST /upload HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked\r\n\r\n",
       "5\r\nhello\r\n0\r\n\r\n"),
    OK("chunked_case_ows", "POST /upload HTTP/1.1\r\n" H11 "transfer-encoding:  Chunked \t\r\n\r\n",
       "0\r\n\r\n"),
    OK("absolute_form",
       "GET http://example.com:8080/a/b?c=d HTTP/1.1\r\nHost: example.com:8080\r\n\r\n", ""),
    OK("asterisk_form", "OPTIONS * HTTP/1.1\r\n" H11 "\r\n", ""),
    OK("authority_form", "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", ""),
    OK("leading_empty_line", "\r\nGET / HTTP/1.1\r\n" H11 "\r\n", ""),
    OK("two_leading_empty_lines", "\r\n\r\nGET / HTTP/1.1\r\n" H11 "\r\n", ""),
    OK("ows_trimming",
       "GET / HTTP/1.1\r\nHost:x\r\nX-A:   spaced  \r\nX-B:\ttabbed\t\r\n"
       "X-C: in ner \t val ue \r\nX-Empty:\r\nX-Blank:   \t \r\n\r\n",
       ""),
    OK("obs_text_value", "GET / HTTP/1.1\r\n" H11 "X-Name: caf\xc3\xa9 \x80\xff\r\n\r\n", ""),
    OK("visible_value_bytes",
       "GET / HTTP/1.1\r\n" H11 "X-V: !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~\r\n\r\n", ""),
    OK("tchar_name", "GET / HTTP/1.1\r\n" H11 "!#$%&'*+-.^_`|~09azAZ: v\r\n\r\n", ""),
    OK("colons_in_value", "GET / HTTP/1.1\r\n" H11 "X-T: a:b: c\r\n\r\n", ""),
    OK("extension_method", "BREW /pot HTTP/1.1\r\n" H11 "\r\n", ""),
    OK("patch_method", "PATCH /r/1 HTTP/1.1\r\n" H11 "Content-Length: 2\r\n\r\n", "{}"),
    OK("empty_host", "GET / HTTP/1.1\r\nHost:\r\n\r\n", ""),
    OK("host_ipv6_port", "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", ""),
    OK("target_obs_text", "GET /caf\xc3\xa9?q=\xff HTTP/1.1\r\n" H11 "\r\n", ""),
    OK("pipelined_next_request", "GET /1 HTTP/1.1\r\n" H11 "\r\n",
       "GET /2 HTTP/1.1\r\nHost: x\r\n\r\n"),
    /* keep-alive (test keep_alive_rules has the expected values) */
    OK("ka_11_close", "GET / HTTP/1.1\r\n" H11 "Connection: close\r\n\r\n", ""),
    OK("ka_11_close_upper", "GET / HTTP/1.1\r\n" H11 "Connection: CLOSE\r\n\r\n", ""),
    OK("ka_11_list_close", "GET / HTTP/1.1\r\n" H11 "Connection: Upgrade ,close\r\n\r\n", ""),
    OK("ka_11_two_fields",
       "GET / HTTP/1.1\r\n" H11 "Connection: keep-alive\r\nConnection: close\r\n\r\n", ""),
    OK("ka_11_keep_alive", "GET / HTTP/1.1\r\n" H11 "Connection: keep-alive\r\n\r\n", ""),
    OK("ka_11_closed_is_not_close", "GET / HTTP/1.1\r\n" H11 "Connection: closed\r\n\r\n", ""),
    OK("ka_11_other_field", "GET / HTTP/1.1\r\n" H11 "X-Connection: close\r\n\r\n", ""),
    OK("ka_10_keep_alive", "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", ""),
    OK("ka_10_keep_alive_mixed_case", "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", ""),
    OK("ka_10_list", "GET / HTTP/1.0\r\nConnection: foo,  keep-alive \r\n\r\n", ""),
    OK("ka_10_keep_alive_close", "GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", ""),
    OK("ka_10_close", "GET / HTTP/1.0\r\nConnection: close\r\n\r\n", ""),
    OK("ka_10_not_a_token", "GET / HTTP/1.0\r\nConnection: keep-alived\r\n\r\n", ""),
    /* Expect */
    OK("expect_continue",
       "PUT /f HTTP/1.1\r\n" H11 "Content-Length: 3\r\nExpect: 100-continue\r\n\r\n", "abc"),
    OK("expect_continue_case", "PUT /f HTTP/1.1\r\n" H11 "Expect: 100-Continue\r\n\r\n", ""),
    OK("expect_http10_ignored", "PUT /f HTTP/1.0\r\nExpect: 100-continue\r\n\r\n", ""),
    OK("expect_http10_unknown_ignored", "GET / HTTP/1.0\r\nExpect: tea\r\n\r\n", ""),
    /* the third smuggling request of the issue: a HEAD with a body */
    OK("smuggle_head_with_body", "HEAD / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n",
       "hello"),

    /* the two other smuggling requests of the issue */
    NO("smuggle_differing_content_length", 400,
       "POST /api/ticket HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 37\r\n\r\n"
       "abcGET /api/admin HTTP/1.1\r\nHost: x\r\n\r\n"),
    NO("smuggle_te_gzip", 400,
       "POST /api/ticket HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n"
       "GET /api/admin HTTP/1.1\r\nHost: x\r\n\r\n"),
    /* Content-Length */
    NO("cl_differing_reversed", 400,
       "POST / HTTP/1.1\r\n" H11 "Content-Length: 37\r\nContent-Length: 3\r\n\r\n"),
    NO("cl_same_then_differing", 400,
       "POST / HTTP/1.1\r\n" H11
       "Content-Length: 3\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n"),
    NO("cl_plus", 400, "POST / HTTP/1.1\r\n" H11 "Content-Length: +5\r\n\r\n"),
    NO("cl_minus", 400, "POST / HTTP/1.1\r\n" H11 "Content-Length: -5\r\n\r\n"),
    NO("cl_inner_space", 400, "POST / HTTP/1.1\r\n" H11 "Content-Length: 5 5\r\n\r\n"),
    NO("cl_comma", 400, "POST / HTTP/1.1\r\n" H11 "Content-Length: 5,5\r\n\r\n"),
    NO("cl_comma_space", 400, "POST / HTTP/1.1\r\n" H11 "Content-Length: 5, 5\r\n\r\n"),
    NO("cl_hex", 400, "POST / HTTP/1.1\r\n" H11 "Content-Length: 0x5\r\n\r\n"),
    NO("cl_letters", 400, "POST / HTTP/1.1\r\n" H11 "Content-Length: five\r\n\r\n"),
    NO("cl_trailing_letter", 400, "POST / HTTP/1.1\r\n" H11 "Content-Length: 5a\r\n\r\n"),
    NO("cl_decimal", 400, "POST / HTTP/1.1\r\n" H11 "Content-Length: 5.0\r\n\r\n"),
    NO("cl_exponent", 400, "POST / HTTP/1.1\r\n" H11 "Content-Length: 1e3\r\n\r\n"),
    NO("cl_empty", 400, "POST / HTTP/1.1\r\n" H11 "Content-Length:\r\n\r\n"),
    NO("cl_19_digits", 400,
       "POST / HTTP/1.1\r\n" H11 "Content-Length: 1234567890123456789\r\n\r\n"),
    NO("cl_space_before_colon", 400, "POST / HTTP/1.1\r\n" H11 "Content-Length : 5\r\n\r\n"),
    NO("cl_obs_fold", 400, "POST / HTTP/1.1\r\n" H11 "Content-Length:\r\n 5\r\n\r\n"),
    /* Transfer-Encoding */
    NO("cl_te", 400,
       "POST / HTTP/1.1\r\n" H11 "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"),
    NO("te_cl", 400,
       "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"),
    NO("te_gzip_chunked", 501,
       "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: gzip, chunked\r\n\r\n"),
    NO("te_gzip_then_chunked_fields", 501,
       "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"),
    NO("te_chunked_chunked", 400,
       "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked, chunked\r\n\r\n"),
    NO("te_chunked_twice_fields", 400,
       "POST / HTTP/1.1\r\n" H11
       "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"),
    NO("te_chunked_gzip", 400,
       "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked, gzip\r\n\r\n"),
    NO("te_identity", 400, "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: identity\r\n\r\n"),
    NO("te_empty", 400, "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding:\r\n\r\n"),
    NO("te_trailing_comma", 400, "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked,\r\n\r\n"),
    NO("te_leading_comma", 400, "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: ,chunked\r\n\r\n"),
    NO("te_chunked_param", 400, "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked;q=1\r\n\r\n"),
    NO("te_quoted", 400, "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: \"chunked\"\r\n\r\n"),
    NO("te_xchunked", 400, "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: xchunked\r\n\r\n"),
    NO("te_chunked_vtab", 400, "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked\x0b\r\n\r\n"),
    NO("te_obs_fold", 400, "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding:\r\n chunked\r\n\r\n"),
    NO("te_http10", 400, "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"),
    NO("te_http10_gzip", 400, "POST / HTTP/1.0\r\nTransfer-Encoding: gzip\r\n\r\n"),
    /* folding, whitespace, names */
    NO("obs_fold", 400, "GET / HTTP/1.1\r\n" H11 "X-A: a\r\n b\r\n\r\n"),
    NO("obs_fold_tab", 400, "GET / HTTP/1.1\r\n" H11 "X-A: a\r\n\tb\r\n\r\n"),
    NO("whitespace_before_first_field", 400, "GET / HTTP/1.1\r\n Host: x\r\n\r\n"),
    NO("space_before_colon", 400, "GET / HTTP/1.1\r\nHost : x\r\n\r\n"),
    NO("tab_before_colon", 400, "GET / HTTP/1.1\r\nHost\t: x\r\n\r\n"),
    NO("empty_field_name", 400, "GET / HTTP/1.1\r\n" H11 ":x\r\n\r\n"),
    NO("no_colon", 400, "GET / HTTP/1.1\r\n" H11 "X-A\r\n\r\n"),
    NO("space_in_name", 400, "GET / HTTP/1.1\r\n" H11 "X A: b\r\n\r\n"),
    NO("paren_in_name", 400, "GET / HTTP/1.1\r\n" H11 "X(A): b\r\n\r\n"),
    NO("obs_text_in_name", 400, "GET / HTTP/1.1\r\n" H11 "X\xc3\xa9: b\r\n\r\n"),
    NO("ctl_in_name", 400,
       "GET / HTTP/1.1\r\n" H11 "X\x01"
       "A: b\r\n\r\n"),
    /* Host */
    NO("two_hosts", 400, "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
    NO("two_identical_hosts", 400, "GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n"),
    NO("two_hosts_http10", 400, "GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n"),
    NO("no_host_http11", 400, "GET / HTTP/1.1\r\nUser-Agent: t\r\n\r\n"),
    NO("no_fields_http11", 400, "GET / HTTP/1.1\r\n\r\n"),
    NO("host_with_space", 400, "GET / HTTP/1.1\r\nHost: a b\r\n\r\n"),
    NO("host_with_path", 400, "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"),
    NO("host_with_userinfo", 400, "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n"),
    NO("host_with_obs_text", 400, "GET / HTTP/1.1\r\nHost: a\xc3\xa9\r\n\r\n"),
    /* control bytes */
    NO("nul_in_value", 400, "GET / HTTP/1.1\r\n" H11 "X-A: a\0b\r\n\r\n"),
    NO("soh_in_value", 400,
       "GET / HTTP/1.1\r\n" H11 "X-A: a\x01"
       "b\r\n\r\n"),
    NO("esc_in_value", 400,
       "GET / HTTP/1.1\r\n" H11 "X-A: a\x1b"
       "b\r\n\r\n"),
    NO("vtab_in_value", 400,
       "GET / HTTP/1.1\r\n" H11 "X-A: a\x0b"
       "b\r\n\r\n"),
    NO("ff_in_value", 400,
       "GET / HTTP/1.1\r\n" H11 "X-A: a\x0c"
       "b\r\n\r\n"),
    NO("del_in_value", 400,
       "GET / HTTP/1.1\r\n" H11 "X-A: a\x7f"
       "b\r\n\r\n"),
    NO("nul_in_target", 400, "GET /a\0b HTTP/1.1\r\n" H11 "\r\n"),
    NO("ctl_in_target", 400,
       "GET /a\x01"
       "b HTTP/1.1\r\n" H11 "\r\n"),
    NO("del_in_target", 400,
       "GET /a\x7f"
       "b HTTP/1.1\r\n" H11 "\r\n"),
    NO("tab_in_target", 400, "GET /a\tb HTTP/1.1\r\n" H11 "\r\n"),
    NO("nul_in_method", 400, "G\0T / HTTP/1.1\r\n" H11 "\r\n"),
    /* bare CR, bare LF */
    NO("bare_cr_request_line", 400, "GET / HTTP/1.1\r" H11 "\r\n"),
    NO("bare_cr_in_value", 400, "GET / HTTP/1.1\r\n" H11 "X-A: a\rb\r\n\r\n"),
    NO("bare_cr_line_end", 400, "GET / HTTP/1.1\r\nHost: x\r\r\n\r\n"),
    NO("bare_cr_final", 400, "GET / HTTP/1.1\r\n" H11 "\rX"),
    NO("bare_cr_leading", 400, "\rGET / HTTP/1.1\r\n" H11 "\r\n"),
    NO("bare_lf_everywhere", 400, "GET / HTTP/1.1\nHost: x\n\n"),
    NO("bare_lf_field", 400, "GET / HTTP/1.1\r\nHost: x\nX-A: b\r\n\r\n"),
    NO("bare_lf_final", 400, "GET / HTTP/1.1\r\n" H11 "\n"),
    NO("bare_lf_leading", 400, "\nGET / HTTP/1.1\r\n" H11 "\r\n"),
    NO("bare_lf_after_empty_line", 400, "\r\n\nGET / HTTP/1.1\r\n" H11 "\r\n"),
    NO("three_leading_empty_lines", 400, "\r\n\r\n\r\nGET / HTTP/1.1\r\n" H11 "\r\n"),
    /* request line */
    NO("method_paren", 400, "G(T / HTTP/1.1\r\n" H11 "\r\n"),
    NO("method_tab", 400, "GET\t/ HTTP/1.1\r\n" H11 "\r\n"),
    NO("method_obs_text", 400, "\x80GET / HTTP/1.1\r\n" H11 "\r\n"),
    NO("method_empty", 400, " / HTTP/1.1\r\n" H11 "\r\n"),
    NO("method_slash", 400, "GET/ / HTTP/1.1\r\n" H11 "\r\n"),
    NO("method_split", 400, "GE T / HTTP/1.1\r\n" H11 "\r\n"),
    NO("no_target", 400, "GET  HTTP/1.1\r\n" H11 "\r\n"),
    NO("two_spaces_before_target", 400, "GET  / HTTP/1.1\r\n" H11 "\r\n"),
    NO("two_spaces_before_version", 400, "GET /  HTTP/1.1\r\n" H11 "\r\n"),
    NO("fragment", 400, "GET /a#frag HTTP/1.1\r\n" H11 "\r\n"),
    NO("fragment_only", 400, "GET # HTTP/1.1\r\n" H11 "\r\n"),
    NO("http09", 400, "GET /\r\n"),
    NO("http09_then_more", 400, "GET /\r\n\r\n"),
    NO("version_lower_case", 400, "GET / http/1.1\r\n" H11 "\r\n"),
    NO("version_two_digit_minor", 400, "GET / HTTP/1.10\r\n" H11 "\r\n"),
    NO("version_two_digit_major", 400, "GET / HTTP/11.1\r\n" H11 "\r\n"),
    NO("version_no_minor", 400, "GET / HTTP/1\r\n" H11 "\r\n"),
    NO("version_letter", 400, "GET / HTTP/1.x\r\n" H11 "\r\n"),
    NO("version_trailing_space", 400, "GET / HTTP/1.1 \r\n" H11 "\r\n"),
    NO("version_1_2", 505, "GET / HTTP/1.2\r\n" H11 "\r\n"),
    NO("version_1_9", 505, "GET / HTTP/1.9\r\n" H11 "\r\n"),
    NO("version_0_9", 505, "GET / HTTP/0.9\r\n" H11 "\r\n"),
    NO("version_2_0", 505, "GET / HTTP/2.0\r\n" H11 "\r\n"),
    NO("version_3_0", 505, "GET / HTTP/3.0\r\n" H11 "\r\n"),
    NO("http2_preface", 505, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
    /* Expect */
    NO("expect_unknown", 417, "GET / HTTP/1.1\r\n" H11 "Expect: tea\r\n\r\n"),
    NO("expect_list", 417, "PUT / HTTP/1.1\r\n" H11 "Expect: 100-continue, foo\r\n\r\n"),
    NO("expect_empty", 417, "PUT / HTTP/1.1\r\n" H11 "Expect:\r\n\r\n"),
    NO("expect_continue_suffix", 417, "PUT / HTTP/1.1\r\n" H11 "Expect: 100-continuex\r\n\r\n"),
};

#define N_HTTP_CASES (sizeof(http_cases) / sizeof(http_cases[0]))

#ifndef HTTP_PARSE_CASES_ONLY
/* ---- the tests --------------------------------------------------------- */
#include <setjmp.h>
#include <stdarg.h>

#include <cmocka.h>

#define MAX_FIELDS 128

static const struct http_case *find_case(const char *name)
{
    for (size_t i = 0; i < N_HTTP_CASES; i++)
        if (strcmp(http_cases[i].name, name) == 0)
            return &http_cases[i];
    fail_msg("no case %s", name);
    return NULL;
}

/* A case's bytes: its head and what follows (malloc'd, exact size). */
static char *case_bytes(const struct http_case *c, size_t *len)
{
    *len = c->head_len + c->rest_len;
    char *b = malloc(*len ? *len : 1);
    assert_non_null(b);
    memcpy(b, c->head, c->head_len);
    memcpy(b + c->head_len, c->rest, c->rest_len);
    return b;
}

/* A parse of a buffer the struct owns. */
struct parsed {
    char *buf;
    size_t len;
    long rc;
    const char *why;
    struct http_head h;
    struct http_field *f;
};

static struct parsed *parse_lim(const char *s, size_t len, const struct http_parse_limits *lim)
{
    assert_true(lim->max_fields <= MAX_FIELDS);
    struct parsed *p = calloc(1, sizeof(*p));
    assert_non_null(p);
    p->buf = malloc(len ? len : 1); /* exact size: ASan sees a read past len */
    p->f = malloc(sizeof(*p->f) * (lim->max_fields ? lim->max_fields : 1));
    assert_non_null(p->buf);
    assert_non_null(p->f);
    memcpy(p->buf, s, len);
    p->len = len;
    p->why = "unset";
    p->rc = http_parse_head(p->buf, len, lim, &p->h, p->f, &p->why);
    return p;
}

static struct parsed *parse_case(const char *name)
{
    const struct http_case *c = find_case(name);
    size_t len;
    char *b = case_bytes(c, &len);
    struct parsed *p = parse_lim(b, len, &http_case_limits);
    free(b);
    if (p->rc != (c->status ? -c->status : (long)c->head_len))
        fail_msg("%s: got %ld (%s), want %ld", name, p->rc, p->why ? p->why : "-",
                 c->status ? -(long)c->status : (long)c->head_len);
    return p;
}

static void parsed_free(struct parsed *p)
{
    free(p->buf);
    free(p->f);
    free(p);
}

static int span_is(const char *s, size_t n, const char *want)
{
    return n == strlen(want) && memcmp(s, want, n) == 0;
}

static void want_field(const struct parsed *p, size_t i, const char *name, const char *value)
{
    assert_true(i < p->h.n_fields);
    const struct http_field *f = &p->h.fields[i];
    if (!span_is(f->name, f->name_len, name) || !span_is(f->value, f->value_len, value))
        fail_msg("field %zu is \"%.*s\": \"%.*s\", want \"%s\": \"%s\"", i, (int)f->name_len,
                 f->name, (int)f->value_len, f->value, name, value);
}

static void want_request_line(const struct parsed *p, const char *method, const char *target,
                              int minor)
{
    if (!span_is(p->h.method, p->h.method_len, method) ||
        !span_is(p->h.target, p->h.target_len, target) || p->h.minor != minor)
        fail_msg("request line \"%.*s\" \"%.*s\" 1.%d, want \"%s\" \"%s\" 1.%d",
                 (int)p->h.method_len, p->h.method, (int)p->h.target_len, p->h.target, p->h.minor,
                 method, target, minor);
}

static int is_tchar_ref(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int is_vchar_or_obs(unsigned char c) { return c > 0x20 && c != 0x7f; }

/* What every accepted head must satisfy; returns a description of the first
 * violation, or NULL. */
static const char *head_violation(const char *buf, size_t len, long rc, const struct http_head *h,
                                  const struct http_parse_limits *lim)
{
    static char msg[200];
    if (rc <= 0 || (size_t)rc > len)
        return "length out of range";
    if ((size_t)rc > lim->max_head)
        return "head longer than max_head";
    if (rc < 4 || memcmp(buf + rc - 4, "\r\n\r\n", 4) != 0)
        return "head does not end with CRLF CRLF";
    for (long i = 0; i < rc; i++) {
        unsigned char c = (unsigned char)buf[i];
        if (c == '\r' && (i + 1 >= rc || buf[i + 1] != '\n'))
            return "bare CR in an accepted head";
        if (c == '\n' && (i == 0 || buf[i - 1] != '\r'))
            return "bare LF in an accepted head";
        if ((c < 0x20 && c != '\r' && c != '\n' && c != '\t') || c == 0x7f)
            return "control byte in an accepted head";
    }
    const char *end = buf + rc;
    if (h->method < buf || h->method + h->method_len >= end || h->method_len == 0)
        return "method outside the head";
    for (size_t i = 0; i < h->method_len; i++)
        if (!is_tchar_ref((unsigned char)h->method[i]))
            return "method is not a token";
    if (h->method[h->method_len] != ' ' || h->method + h->method_len + 1 != h->target)
        return "method not followed by one space and the target";
    if (h->target + h->target_len >= end || h->target_len == 0 || h->target_len > lim->max_target)
        return "target out of range";
    for (size_t i = 0; i < h->target_len; i++)
        if (!is_vchar_or_obs((unsigned char)h->target[i]) || h->target[i] == '#')
            return "invalid byte in the target";
    if (memcmp(h->target + h->target_len, " HTTP/1.", 8) != 0 ||
        h->target[h->target_len + 8] != '0' + h->minor || (h->minor != 0 && h->minor != 1))
        return "version does not match minor";
    if (h->n_fields > lim->max_fields)
        return "more fields than max_fields";
    size_t crlfs = 0;
    for (const char *q = h->method; q + 1 < end; q++)
        crlfs += q[0] == '\r' && q[1] == '\n';
    if (crlfs != h->n_fields + 2)
        return "field count does not match the lines of the head";
    int hosts = 0;
    for (size_t i = 0; i < h->n_fields; i++) {
        const struct http_field *f = &h->fields[i];
        snprintf(msg, sizeof(msg), "field %zu: ", i);
        if (f->name < h->target || f->name + f->name_len > end || f->name_len == 0)
            return strcat(msg, "name outside the head");
        for (size_t k = 0; k < f->name_len; k++)
            if (!is_tchar_ref((unsigned char)f->name[k]))
                return strcat(msg, "name is not a token");
        if (f->name[f->name_len] != ':')
            return strcat(msg, "name not followed by a colon");
        if (f->value < f->name + f->name_len + 1 || f->value + f->value_len > end)
            return strcat(msg, "value outside the head");
        for (const char *q = f->name + f->name_len + 1; q < f->value; q++)
            if (*q != ' ' && *q != '\t')
                return strcat(msg, "non-whitespace before the value");
        for (size_t k = 0; k < f->value_len; k++) {
            unsigned char c = (unsigned char)f->value[k];
            if (c != ' ' && c != '\t' && !is_vchar_or_obs(c))
                return strcat(msg, "invalid byte in the value");
        }
        if (f->value_len &&
            (f->value[0] == ' ' || f->value[0] == '\t' || f->value[f->value_len - 1] == ' ' ||
             f->value[f->value_len - 1] == '\t'))
            return strcat(msg, "value not trimmed");
        const char *q = f->value + f->value_len;
        while (*q == ' ' || *q == '\t')
            q++;
        if (q[0] != '\r' || q[1] != '\n')
            return strcat(msg, "value does not run to the end of its line");
        if (f->name_len == 4 && strncasecmp(f->name, "host", 4) == 0) {
            hosts++;
            if (h->host != f)
                return strcat(msg, "host does not point at the Host field");
        }
    }
    if (hosts > 1 || (hosts == 0 && h->host != NULL))
        return "host pointer without exactly one Host field";
    if (h->minor == 1 && !h->host)
        return "HTTP/1.1 head without Host";
    if (h->content_length < -1)
        return "negative content_length";
    if (h->content_length >= 0 && h->chunked)
        return "both Content-Length and chunked";
    if (h->chunked && h->minor != 1)
        return "chunked in HTTP/1.0";
    if ((h->keep_alive != 0 && h->keep_alive != 1) ||
        (h->expect_continue != 0 && h->expect_continue != 1) ||
        (h->chunked != 0 && h->chunked != 1))
        return "flags not 0 or 1";
    if (h->expect_continue && h->minor != 1)
        return "expect_continue in HTTP/1.0";
    return NULL;
}

/* A parse result with the pointers made offsets into the buffer, so that two
 * parses of copies of the same bytes can be compared. */
struct snap {
    long rc;
    int has_why;
    size_t method, method_len, target, target_len, n_fields;
    int minor, chunked, keep_alive, expect_continue;
    long long content_length;
    long host; /* field index or -1 */
    size_t name[MAX_FIELDS], name_len[MAX_FIELDS], value[MAX_FIELDS], value_len[MAX_FIELDS];
};

static void snap_of(struct snap *s, const struct parsed *p)
{
    memset(s, 0, sizeof(*s));
    s->rc = p->rc;
    s->has_why = p->why != NULL;
    if (p->rc <= 0)
        return;
    const struct http_head *h = &p->h;
    s->method = (size_t)(h->method - p->buf);
    s->method_len = h->method_len;
    s->target = (size_t)(h->target - p->buf);
    s->target_len = h->target_len;
    s->n_fields = h->n_fields;
    s->minor = h->minor;
    s->chunked = h->chunked;
    s->keep_alive = h->keep_alive;
    s->expect_continue = h->expect_continue;
    s->content_length = h->content_length;
    s->host = h->host ? (long)(h->host - h->fields) : -1;
    for (size_t i = 0; i < h->n_fields && i < MAX_FIELDS; i++) {
        s->name[i] = (size_t)(h->fields[i].name - p->buf);
        s->name_len[i] = h->fields[i].name_len;
        s->value[i] = (size_t)(h->fields[i].value - p->buf);
        s->value_len[i] = h->fields[i].value_len;
    }
}

/* Feeds bytes[0..len) one byte more at a time (a fresh exact-size copy each
 * time) and checks: 0 until the whole buffer's answer, then that answer;
 * a refusal never follows "complete", a prefix is never refused for a head
 * that is accepted whole, and a refusal is the whole buffer's one. Returns
 * a description of the first problem, or NULL. */
static const char *incremental_violation(const char *bytes, size_t len,
                                         const struct http_parse_limits *lim, size_t *at)
{
    static char msg[200];
    struct parsed *whole = parse_lim(bytes, len, lim);
    struct snap *ws = malloc(sizeof(*ws)), *ps = malloc(sizeof(*ps));
    assert_non_null(ws);
    assert_non_null(ps);
    snap_of(ws, whole);
    const char *bad = NULL;
    for (size_t n = 0; n <= len && !bad; n++) {
        struct parsed *p = parse_lim(bytes, n, lim);
        snap_of(ps, p);
        *at = n;
        if (whole->rc > 0 && n < (size_t)whole->rc) {
            if (p->rc != 0) {
                snprintf(msg, sizeof(msg), "prefix of %zu bytes gives %ld (%s), want 0", n, p->rc,
                         p->why ? p->why : "-");
                bad = msg;
            }
        } else if (whole->rc > 0) {
            if (memcmp(ps, ws, sizeof(*ps)) != 0) {
                snprintf(msg, sizeof(msg),
                         "prefix of %zu bytes gives %ld, not what the whole gives", n, p->rc);
                bad = msg;
            }
        } else if (p->rc > 0) {
            snprintf(msg, sizeof(msg), "prefix of %zu bytes complete (%ld), whole refused (%ld)", n,
                     p->rc, whole->rc);
            bad = msg;
        } else if (p->rc < 0 && p->rc != whole->rc) {
            snprintf(msg, sizeof(msg), "prefix of %zu bytes refused with %ld (%s), whole with %ld",
                     n, -p->rc, p->why, -whole->rc);
            bad = msg;
        } else if (p->rc == 0 && p->why != NULL) {
            bad = "why set for an incomplete head";
        }
        parsed_free(p);
    }
    parsed_free(whole);
    free(ws);
    free(ps);
    return bad;
}

/* ---- the whole table --------------------------------------------------- */

static void table_heads_accepted_or_refused(void **state)
{
    int failures = 0, accepted = 0, refused = 0;
    for (size_t i = 0; i < N_HTTP_CASES; i++) {
        const struct http_case *c = &http_cases[i];
        size_t len;
        char *b = case_bytes(c, &len);
        struct parsed *p = parse_lim(b, len, &http_case_limits);
        long want = c->status ? -c->status : (long)c->head_len;
        if (p->rc != want) {
            print_error("%s: got %ld (%s), want %ld\n", c->name, p->rc, p->why ? p->why : "-",
                        want);
            failures++;
        } else if (c->status == 0) {
            accepted++;
            const char *v = head_violation(p->buf, p->len, p->rc, &p->h, &http_case_limits);
            if (v || p->why) {
                print_error("%s: %s\n", c->name, v ? v : "why set on success");
                failures++;
            }
        } else {
            refused++;
            if (!p->why || !*p->why) {
                print_error("%s: refused without a reason\n", c->name);
                failures++;
            }
        }
        parsed_free(p);
        free(b);
    }
    print_message("%d heads accepted, %d refused as expected\n", accepted, refused);
    if (failures)
        fail_msg("%d of %zu heads got the wrong answer", failures, N_HTTP_CASES);
}

static void table_heads_fed_byte_by_byte(void **state)
{
    int failures = 0;
    for (size_t i = 0; i < N_HTTP_CASES; i++) {
        const struct http_case *c = &http_cases[i];
        size_t len, at = 0;
        char *b = case_bytes(c, &len);
        const char *v = incremental_violation(b, len, &http_case_limits, &at);
        if (v) {
            print_error("%s: %s\n", c->name, v);
            failures++;
        }
        free(b);
    }
    if (failures)
        fail_msg("%d heads differ when fed byte by byte", failures);
}

/* ---- valid heads, field by field --------------------------------------- */

static void get_with_host(void **state)
{
    struct parsed *p = parse_case("get_host");
    want_request_line(p, "GET", "/index.html?a=1&b=%20", 1);
    assert_int_equal(p->h.n_fields, 2);
    want_field(p, 0, "Host", "example.com");
    want_field(p, 1, "User-Agent", "t/1");
    assert_ptr_equal(p->h.host, &p->h.fields[0]);
    assert_true(p->h.content_length == -1);
    assert_int_equal(p->h.chunked, 0);
    assert_int_equal(p->h.keep_alive, 1);
    assert_int_equal(p->h.expect_continue, 0);
    assert_ptr_equal(p->h.fields, p->f);
    assert_null(p->why);
    parsed_free(p);
}

static void http10_without_host(void **state)
{
    struct parsed *p = parse_case("http10_no_host");
    want_request_line(p, "GET", "/", 0);
    assert_int_equal(p->h.n_fields, 0);
    assert_null(p->h.host);
    assert_int_equal(p->h.keep_alive, 0);
    assert_true(p->h.content_length == -1);
    parsed_free(p);

    p = parse_case("http10_host");
    want_request_line(p, "GET", "/x", 0);
    assert_ptr_equal(p->h.host, &p->h.fields[0]);
    parsed_free(p);
}

static void post_with_content_length(void **state)
{
    struct parsed *p = parse_case("post_content_length");
    want_request_line(p, "POST", "/api/ticket", 1);
    assert_int_equal(p->h.n_fields, 3);
    want_field(p, 2, "Content-Length", "13");
    assert_true(p->h.content_length == 13);
    assert_int_equal(p->h.chunked, 0);
    /* the body follows the head, exactly content_length bytes */
    assert_int_equal(p->len - (size_t)p->rc, 13);
    assert_memory_equal(p->buf + p->rc, "{\"ticket\":1}\n", 13);
    parsed_free(p);

    static const struct {
        const char *name;
        long long cl;
    } lengths[] = {
        {"content_length_zero", 0},
        {"content_length_leading_zeros", 7},
        {"content_length_18_digits", 999999999999999999LL},
        {"content_length_ows", 5},
        {"patch_method", 2},
        {"expect_continue", 3},
    };
    for (size_t i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++) {
        p = parse_case(lengths[i].name);
        if (p->h.content_length != lengths[i].cl || p->h.chunked)
            fail_msg("%s: content_length %lld chunked %d, want %lld", lengths[i].name,
                     p->h.content_length, p->h.chunked, lengths[i].cl);
        parsed_free(p);
    }
}

static void duplicate_identical_content_length(void **state)
{
    struct parsed *p = parse_case("content_length_duplicate_identical");
    assert_int_equal(p->h.n_fields, 3);
    assert_true(p->h.content_length == 5);
    parsed_free(p);
    /* "5" and "005" are the same length */
    static const char same[] =
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 005\r\n\r\n";
    p = parse_lim(same, sizeof(same) - 1, &http_case_limits);
    assert_int_equal(p->rc, sizeof(same) - 1);
    assert_true(p->h.content_length == 5);
    parsed_free(p);
}

static void chunked_head(void **state)
{
    const char *names[] = {"chunked", "chunked_case_ows"};
    for (size_t i = 0; i < 2; i++) {
        struct parsed *p = parse_case(names[i]);
        want_request_line(p, "POST", "/upload", 1);
        assert_int_equal(p->h.chunked, 1);
        assert_true(p->h.content_length == -1);
        assert_int_equal(p->h.keep_alive, 1);
        parsed_free(p);
    }
}

static void request_target_forms(void **state)
{
    struct parsed *p = parse_case("absolute_form");
    want_request_line(p, "GET", "http://example.com:8080/a/b?c=d", 1);
    want_field(p, 0, "Host", "example.com:8080");
    parsed_free(p);
    p = parse_case("asterisk_form");
    want_request_line(p, "OPTIONS", "*", 1);
    parsed_free(p);
    p = parse_case("authority_form");
    want_request_line(p, "CONNECT", "example.com:443", 1);
    parsed_free(p);
    p = parse_case("target_obs_text");
    want_request_line(p, "GET", "/caf\xc3\xa9?q=\xff", 1);
    parsed_free(p);
    p = parse_case("extension_method");
    want_request_line(p, "BREW", "/pot", 1);
    parsed_free(p);
}

static void leading_empty_lines(void **state)
{
    struct parsed *p = parse_case("leading_empty_line");
    assert_ptr_equal(p->h.method, p->buf + 2);
    want_request_line(p, "GET", "/", 1);
    parsed_free(p);
    p = parse_case("two_leading_empty_lines");
    assert_ptr_equal(p->h.method, p->buf + 4);
    want_request_line(p, "GET", "/", 1);
    want_field(p, 0, "Host", "x");
    parsed_free(p);
    /* a third one is refused (the table has it); empty lines only are
     * incomplete, not refused */
    const char *why;
    struct http_head h;
    struct http_field f[4];
    struct http_parse_limits lim = {8192, 1024, 4};
    assert_int_equal(http_parse_head("\r\n", 2, &lim, &h, f, &why), 0);
    assert_int_equal(http_parse_head("\r\n\r\n", 4, &lim, &h, f, &why), 0);
    assert_int_equal(http_parse_head("\r\n\r", 3, &lim, &h, f, &why), 0);
    assert_int_equal(http_parse_head("", 0, &lim, &h, f, &why), 0);
    assert_null(why);
}

static void ows_is_trimmed(void **state)
{
    struct parsed *p = parse_case("ows_trimming");
    assert_int_equal(p->h.n_fields, 6);
    want_field(p, 0, "Host", "x");
    want_field(p, 1, "X-A", "spaced");
    want_field(p, 2, "X-B", "tabbed");
    want_field(p, 3, "X-C", "in ner \t val ue");
    want_field(p, 4, "X-Empty", "");
    want_field(p, 5, "X-Blank", "");
    parsed_free(p);
    p = parse_case("colons_in_value");
    want_field(p, 1, "X-T", "a:b: c");
    parsed_free(p);
    p = parse_case("empty_host");
    assert_non_null(p->h.host);
    assert_int_equal(p->h.host->value_len, 0);
    parsed_free(p);
}

static void obs_text_in_values(void **state)
{
    struct parsed *p = parse_case("obs_text_value");
    want_field(p, 1, "X-Name", "caf\xc3\xa9 \x80\xff");
    parsed_free(p);
    p = parse_case("visible_value_bytes");
    want_field(p, 1, "X-V", "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~");
    parsed_free(p);
    p = parse_case("tchar_name");
    want_field(p, 1, "!#$%&'*+-.^_`|~09azAZ", "v");
    parsed_free(p);
}

/* A head with Host and n more fields X-i: v (malloc'd). */
static char *head_with_fields(size_t n, size_t *len)
{
    char *b = malloc(64 + n * 24);
    assert_non_null(b);
    size_t o = (size_t)sprintf(b, "GET / HTTP/1.1\r\nHost: x\r\n");
    for (size_t i = 0; i < n; i++)
        o += (size_t)sprintf(b + o, "X-%zu: v%zu\r\n", i, i);
    o += (size_t)sprintf(b + o, "\r\n");
    *len = o;
    return b;
}

static void many_fields_up_to_the_limit(void **state)
{
    static const size_t maxes[] = {1, 2, 32, 100};
    for (size_t k = 0; k < 4; k++) {
        struct http_parse_limits lim = {65536, 1024, maxes[k]};
        size_t len;
        char *b = head_with_fields(maxes[k] - 1, &len); /* Host + max-1 = max */
        struct parsed *p = parse_lim(b, len, &lim);
        assert_int_equal(p->rc, (long)len);
        assert_int_equal(p->h.n_fields, maxes[k]);
        if (maxes[k] > 1) {
            char name[32], value[32];
            snprintf(name, sizeof(name), "X-%zu", maxes[k] - 2);
            snprintf(value, sizeof(value), "v%zu", maxes[k] - 2);
            want_field(p, maxes[k] - 1, name, value);
        }
        assert_null(head_violation(p->buf, p->len, p->rc, &p->h, &lim));
        parsed_free(p);
        free(b);

        b = head_with_fields(maxes[k], &len); /* one too many */
        p = parse_lim(b, len, &lim);
        assert_int_equal(p->rc, -431);
        parsed_free(p);
        /* refused as soon as the extra field line is complete */
        p = parse_lim(b, len - 2, &lim);
        assert_int_equal(p->rc, -431);
        parsed_free(p);
        free(b);
    }
    /* no fields at all allowed: HTTP/1.0 without fields is fine */
    struct http_parse_limits none = {8192, 1024, 0};
    struct parsed *p = parse_lim("GET / HTTP/1.0\r\n\r\n", 18, &none);
    assert_int_equal(p->rc, 18);
    parsed_free(p);
    p = parse_lim("GET / HTTP/1.0\r\nA: b\r\n\r\n", 24, &none);
    assert_int_equal(p->rc, -431);
    parsed_free(p);
}

static void keep_alive_rules(void **state)
{
    static const struct {
        const char *name;
        int keep_alive;
    } rules[] = {
        {"get_host", 1},
        {"ka_11_close", 0},
        {"ka_11_close_upper", 0},
        {"ka_11_list_close", 0},
        {"ka_11_two_fields", 0},
        {"ka_11_keep_alive", 1},
        {"ka_11_closed_is_not_close", 1},
        {"ka_11_other_field", 1},
        {"http10_no_host", 0},
        {"http10_host", 0},
        {"ka_10_keep_alive", 1},
        {"ka_10_keep_alive_mixed_case", 1},
        {"ka_10_list", 1},
        {"ka_10_keep_alive_close", 0},
        {"ka_10_close", 0},
        {"ka_10_not_a_token", 0},
    };
    for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
        struct parsed *p = parse_case(rules[i].name);
        if (p->h.keep_alive != rules[i].keep_alive)
            fail_msg("%s: keep_alive %d, want %d", rules[i].name, p->h.keep_alive,
                     rules[i].keep_alive);
        parsed_free(p);
    }
}

static void expect_continue(void **state)
{
    static const struct {
        const char *name;
        int expect;
    } rules[] = {
        {"expect_continue", 1},       {"expect_continue_case", 1},
        {"expect_http10_ignored", 0}, {"expect_http10_unknown_ignored", 0},
        {"post_content_length", 0},
    };
    for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
        struct parsed *p = parse_case(rules[i].name);
        if (p->h.expect_continue != rules[i].expect)
            fail_msg("%s: expect_continue %d, want %d", rules[i].name, p->h.expect_continue,
                     rules[i].expect);
        parsed_free(p);
    }
}

/* ---- the smuggling requests of the issue ------------------------------- */

static void smuggling_requests_of_the_issue(void **state)
{
    /* two differing Content-Lengths: 400 */
    struct parsed *p = parse_case("smuggle_differing_content_length");
    assert_int_equal(p->rc, -400);
    parsed_free(p);
    /* Transfer-Encoding: gzip with no Content-Length: 400 */
    p = parse_case("smuggle_te_gzip");
    assert_int_equal(p->rc, -400);
    parsed_free(p);
    /* HEAD with a body: the head ends before "hello", which is the body of
     * content_length bytes; it never starts a request */
    p = parse_case("smuggle_head_with_body");
    want_request_line(p, "HEAD", "/", 1);
    assert_true(p->h.content_length == 5);
    assert_int_equal(p->h.chunked, 0);
    assert_int_equal(p->len - (size_t)p->rc, 5);
    assert_memory_equal(p->buf + p->rc, "hello", 5);
    parsed_free(p);
    /* and the pipelined request after a head is left alone */
    p = parse_case("pipelined_next_request");
    want_request_line(p, "GET", "/1", 1);
    assert_memory_equal(p->buf + p->rc, "GET /2", 6);
    parsed_free(p);
}

/* ---- statuses and reasons of a few refusals ---------------------------- */

static void refusal_reasons(void **state)
{
    static const struct {
        const char *name;
        const char *why_has;
    } reasons[] = {
        {"nul_in_value", "NUL"},
        {"soh_in_value", "control"},
        {"obs_fold", "folding"},
        {"space_before_colon", "colon"},
        {"empty_field_name", "empty field name"},
        {"http09", "0.9"},
        {"fragment", "fragment"},
        {"http2_preface", "HTTP/2"},
        {"smuggle_differing_content_length", "differing"},
        {"cl_te", "both"},
        {"te_http10", "1.0"},
        {"te_gzip_chunked", "coding"},
        {"te_chunked_chunked", "more than once"},
        {"two_hosts", "Host"},
        {"no_host_http11", "Host"},
        {"bare_lf_field", "bare LF"},
        {"bare_cr_in_value", "bare CR"},
    };
    for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
        struct parsed *p = parse_case(reasons[i].name);
        if (!p->why || !strstr(p->why, reasons[i].why_has))
            fail_msg("%s: reason \"%s\" does not mention \"%s\"", reasons[i].name,
                     p->why ? p->why : "(null)", reasons[i].why_has);
        parsed_free(p);
    }
}

/* ---- limits ------------------------------------------------------------ */

/* "GET /aaa... HTTP/1.1\r\nHost: x\r\n\r\n" with a target of n bytes. */
static char *head_with_target(size_t n, size_t *len)
{
    char *b = malloc(n + 64);
    assert_non_null(b);
    memcpy(b, "GET /", 5);
    memset(b + 5, 'a', n - 1);
    size_t o = 4 + n;
    o += (size_t)sprintf(b + o, " HTTP/1.1\r\nHost: x\r\n\r\n");
    *len = o;
    return b;
}

static void target_too_long(void **state)
{
    struct http_parse_limits lim = {8192, 100, 8};
    size_t len;
    char *b = head_with_target(100, &len);
    struct parsed *p = parse_lim(b, len, &lim);
    assert_int_equal(p->rc, (long)len); /* exactly max_target */
    assert_int_equal(p->h.target_len, 100);
    parsed_free(p);
    free(b);

    b = head_with_target(101, &len);
    p = parse_lim(b, len, &lim);
    assert_int_equal(p->rc, -414);
    parsed_free(p);
    /* while incomplete: as soon as the target passes the limit */
    p = parse_lim(b, 4 + 101, &lim); /* "GET " and the whole target, no space */
    assert_int_equal(p->rc, -414);
    parsed_free(p);
    p = parse_lim(b, 4 + 100, &lim); /* still within the limit: wait */
    assert_int_equal(p->rc, 0);
    parsed_free(p);
    free(b);

    /* a target far longer than the buffer the server would hold */
    b = head_with_target(5000, &len);
    for (size_t n = 4 + 101; n <= 4 + 5000; n += 499) {
        p = parse_lim(b, n, &lim);
        assert_int_equal(p->rc, -414);
        parsed_free(p);
    }
    free(b);
}

static void head_too_large(void **state)
{
    size_t len;
    char *b = head_with_fields(10, &len);
    /* exactly max_head: accepted */
    struct http_parse_limits lim = {len, 1024, 32};
    struct parsed *p = parse_lim(b, len, &lim);
    assert_int_equal(p->rc, (long)len);
    parsed_free(p);
    /* one byte less allowed: refused, whole or while incomplete */
    lim.max_head = len - 1;
    p = parse_lim(b, len, &lim);
    assert_int_equal(p->rc, -431);
    parsed_free(p);
    p = parse_lim(b, len - 1, &lim); /* max_head bytes, not complete */
    assert_int_equal(p->rc, -431);
    parsed_free(p);
    p = parse_lim(b, len - 2, &lim);
    assert_int_equal(p->rc, 0);
    parsed_free(p);
    /* and at every length from max_head on */
    lim.max_head = 100;
    for (size_t n = 100; n < len; n++) {
        p = parse_lim(b, n, &lim);
        if (p->rc != -431)
            fail_msg("%zu bytes with max_head 100: %ld", n, p->rc);
        parsed_free(p);
    }
    free(b);

    /* incomplete in the request line: a long method, a long target within
     * max_target, empty lines only */
    struct http_parse_limits small = {64, 1024, 8};
    char big[200];
    memset(big, 'A', sizeof(big));
    p = parse_lim(big, 64, &small);
    assert_int_equal(p->rc, -431);
    parsed_free(p);
    p = parse_lim(big, 63, &small);
    assert_int_equal(p->rc, 0);
    parsed_free(p);
    memcpy(big, "GET /", 5);
    memset(big + 5, 'b', sizeof(big) - 5);
    p = parse_lim(big, 64, &small);
    assert_int_equal(p->rc, -431);
    parsed_free(p);
    /* a field value that never ends */
    memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
    memset(big + 19, 'v', sizeof(big) - 19);
    p = parse_lim(big, sizeof(big), &small);
    assert_int_equal(p->rc, -431);
    parsed_free(p);
    p = parse_lim(big, 63, &small);
    assert_int_equal(p->rc, 0);
    parsed_free(p);
}

/* ---- tchar ------------------------------------------------------------- */

static void tchar_is_the_rfc_set(void **state)
{
    for (int c = 0; c < 256; c++)
        if (!!http_is_tchar((unsigned char)c) != !!is_tchar_ref((unsigned char)c))
            fail_msg("http_is_tchar(0x%02x) = %d", c, http_is_tchar((unsigned char)c));
}

/* ---- chunked bodies ---------------------------------------------------- */

struct decoded {
    long consumed; /* total, or -1 */
    int done, status;
    const char *why;
    char *out;
    size_t out_len;
};

/* Decodes in[0..len) fed in pieces: whole (step 0), step bytes at a time, or
 * split once at `split` (step SIZE_MAX). Each piece is an exact-size heap
 * copy and the output buffer holds exactly out_cap bytes. */
static struct decoded decode(const char *in, size_t len, size_t out_cap, size_t max_trailer,
                             size_t step, size_t split)
{
    struct decoded r = {0, 0, 0, NULL, malloc(out_cap ? out_cap : 1), 0};
    assert_non_null(r.out);
    struct http_chunked d;
    http_chunked_init(&d);
    size_t off = 0;
    while (off < len) {
        size_t n = len - off;
        if (step == SIZE_MAX)
            n = off < split ? split - off : len - off;
        else if (step && n > step)
            n = step;
        char *piece = malloc(n ? n : 1);
        assert_non_null(piece);
        memcpy(piece, in + off, n);
        int status = 0;
        const char *why = NULL;
        long rc = http_chunked_decode(&d, piece, n, r.out, &r.out_len, out_cap, max_trailer,
                                      &r.done, &status, &why);
        free(piece);
        assert_true(r.out_len <= out_cap);
        if (rc < 0) {
            assert_int_equal(rc, -1);
            assert_non_null(why);
            r.consumed = -1;
            r.status = status;
            r.why = why;
            return r;
        }
        assert_true((size_t)rc <= n);
        off += (size_t)rc;
        if (r.done)
            break;
        assert_int_equal((size_t)rc, n); /* everything is taken until done */
    }
    r.consumed = (long)off;
    return r;
}

struct chunked_case {
    const char *name;
    const char *in;
    size_t len;
    const char *out; /* decoded data (valid cases) */
    size_t out_len;
    size_t consumed; /* valid cases: the body's length; what follows stays */
    int status;      /* refusals */
    size_t out_cap, max_trailer;
};

#define CH_OK(name, body, after, out)                                                              \
    {                                                                                              \
        name, body after, sizeof(body after) - 1, out, sizeof(out) - 1, sizeof(body) - 1, 0, 1024, \
            256                                                                                    \
    }
#define CH_NO(name, status, body)                                                                  \
    {                                                                                              \
        name, body, sizeof(body) - 1, "", 0, 0, status, 1024, 256                                  \
    }
#define CH_NO_LIM(name, status, body, cap, trailer)                                                \
    {                                                                                              \
        name, body, sizeof(body) - 1, "", 0, 0, status, cap, trailer                               \
    }

static const struct chunked_case chunked_cases[] = {
    CH_OK("one_chunk", "3\r\nabc\r\n0\r\n\r\n", "", "abc"),
    CH_OK("empty_body", "0\r\n\r\n", "", ""),
    CH_OK("two_chunks", "3\r\nabc\r\n5\r\nhello\r\n0\r\n\r\n", "", "abchello"),
    CH_OK("next_request_not_consumed", "3\r\nabc\r\n0\r\n\r\n", "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
          "abc"),
    CH_OK("garbage_after_not_consumed", "1\r\nz\r\n0\r\n\r\n", "\r\n\x01\xff", "z"),
    CH_OK("extensions", "3;name=val\r\nabc\r\n5;a;b=\"q s\"\r\nhello\r\n0;last\r\n\r\n", "",
          "abchello"),
    CH_OK("extension_bws", "3 ;a = b\r\nabc\r\n0\t;x\r\n\r\n", "", "abc"),
    CH_OK("trailers", "3\r\nabc\r\n0\r\nX-T: 1\r\nChecksum:  ab cd \r\nEmpty:\r\n\r\n", "X", "abc"),
    CH_OK("upper_hex", "A\r\n0123456789\r\n1F\r\n0123456789abcdefghijklmnopqrstu\r\n0\r\n\r\n", "",
          "01234567890123456789abcdefghijklmnopqrstu"),
    CH_OK("lower_hex", "a\r\n0123456789\r\n1f\r\n0123456789abcdefghijklmnopqrstu\r\n0\r\n\r\n", "",
          "01234567890123456789abcdefghijklmnopqrstu"),
    CH_OK("leading_zeros", "0003\r\nabc\r\n000\r\n\r\n", "", "abc"),
    CH_OK("sixteen_hex_digits", "0000000000000003\r\nabc\r\n0000000000000000\r\n\r\n", "", "abc"),
    CH_OK("binary_data", "6\r\n\r\n\0\xff\r\n\r\n0\r\n\r\n", "", "\r\n\0\xff\r\n"),
    CH_OK("data_looks_like_chunks", "5\r\n0\r\n\r\n\r\n0\r\n\r\n", "", "0\r\n\r\n"),

    CH_NO("hex_prefix", 400, "0x3\r\nabc\r\n0\r\n\r\n"),
    CH_NO("leading_space", 400, " 3\r\nabc\r\n0\r\n\r\n"),
    CH_NO("sign", 400, "+3\r\nabc\r\n0\r\n\r\n"),
    CH_NO("no_size", 400, "\r\nabc\r\n0\r\n\r\n"),
    CH_NO("only_extension", 400, ";a\r\nabc\r\n0\r\n\r\n"),
    CH_NO("not_hex", 400, "g\r\nabc\r\n0\r\n\r\n"),
    CH_NO("missing_crlf_after_data", 400, "3\r\nabc0\r\n\r\n"),
    CH_NO("data_longer_than_size", 400, "3\r\nabcdef\r\n0\r\n\r\n"),
    CH_NO("data_then_lf", 400, "3\r\nabc\n0\r\n\r\n"),
    CH_NO("data_then_lf_lf", 400, "3\r\nabc\n\n0\r\n\r\n"),
    CH_NO("data_then_cr_x", 400, "3\r\nabc\rx0\r\n\r\n"),
    CH_NO("seventeen_hex_digits", 400, "00000000000000003\r\nabc\r\n0\r\n\r\n"),
    CH_NO("huge_size", 400, "10000000000000000\r\n"),
    CH_NO("bare_lf_after_size", 400, "3\nabc\r\n0\r\n\r\n"),
    CH_NO("bare_cr_after_size", 400, "3\rabc\r\n0\r\n\r\n"),
    CH_NO("bare_lf_in_extension", 400, "3;a\nabc\r\n0\r\n\r\n"),
    CH_NO("ctl_in_extension", 400,
          "3;a\x01"
          "b\r\nabc\r\n0\r\n\r\n"),
    CH_NO("nul_in_extension", 400, "3;a\0b\r\nabc\r\n0\r\n\r\n"),
    CH_NO("bare_lf_last_chunk", 400, "0\n\r\n"),
    CH_NO("bare_lf_end", 400, "0\r\n\n"),
    CH_NO("bare_cr_end", 400, "0\r\n\rX"),
    CH_NO("bare_lf_trailer", 400, "0\r\nX: y\n\r\n"),
    CH_NO("bare_cr_trailer", 400, "0\r\nX: y\rZ\r\n\r\n"),
    CH_NO("trailer_ctl", 400,
          "0\r\nX: a\x01"
          "b\r\n\r\n"),
    CH_NO("trailer_nul", 400, "0\r\nX: a\0b\r\n\r\n"),
    CH_NO("trailer_del", 400, "0\r\nX: a\x7f\r\n\r\n"),
    CH_NO("trailer_folding", 400, "0\r\nX: a\r\n b\r\n\r\n"),
    CH_NO("trailer_empty_name", 400, "0\r\n: b\r\n\r\n"),
    CH_NO("trailer_space_before_colon", 400, "0\r\nX : b\r\n\r\n"),
    CH_NO("trailer_no_colon", 400, "0\r\nXb\r\n\r\n"),
    CH_NO("data_after_last_chunk", 400, "0\r\nabc\r\n\r\n"),
    CH_NO_LIM("size_over_out_cap", 413, "b\r\nhello world\r\n0\r\n\r\n", 10, 256),
    CH_NO_LIM("sum_over_out_cap", 413, "6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n", 10, 256),
    CH_NO_LIM("max_size_over_out_cap", 413, "ffffffffffffffff\r\n", 1024, 256),
    CH_NO_LIM("trailers_too_large", 431, "0\r\nX-Long: 0123456789\r\n\r\n", 1024, 10),
    CH_NO_LIM("many_small_trailers", 431, "0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", 1024, 17),
};

#define N_CHUNKED (sizeof(chunked_cases) / sizeof(chunked_cases[0]))

static int decoded_ok(const struct chunked_case *c, const struct decoded *r, const char *how)
{
    if (c->status == 0) {
        if (r->consumed != (long)c->consumed || !r->done || r->out_len != c->out_len ||
            memcmp(r->out, c->out, c->out_len) != 0) {
            print_error("%s (%s): consumed %ld done %d out %zu bytes (%s); want %zu, 1, %zu\n",
                        c->name, how, r->consumed, r->done, r->out_len, r->why ? r->why : "-",
                        c->consumed, c->out_len);
            return 0;
        }
    } else if (r->consumed != -1 || r->status != c->status) {
        print_error("%s (%s): consumed %ld done %d status %d, want refused with %d\n", c->name, how,
                    r->consumed, r->done, r->status, c->status);
        return 0;
    }
    return 1;
}

static void chunked_bodies(void **state)
{
    int failures = 0;
    for (size_t i = 0; i < N_CHUNKED; i++) {
        const struct chunked_case *c = &chunked_cases[i];
        struct decoded r = decode(c->in, c->len, c->out_cap, c->max_trailer, 0, 0);
        int ok = decoded_ok(c, &r, "whole");
        free(r.out);
        r = decode(c->in, c->len, c->out_cap, c->max_trailer, 1, 0);
        ok &= decoded_ok(c, &r, "byte by byte");
        free(r.out);
        for (size_t s = 1; s < c->len && ok; s++) {
            char how[32];
            snprintf(how, sizeof(how), "split at %zu", s);
            r = decode(c->in, c->len, c->out_cap, c->max_trailer, SIZE_MAX, s);
            ok &= decoded_ok(c, &r, how);
            free(r.out);
        }
        failures += !ok;
    }
    if (failures)
        fail_msg("%d of %zu chunked bodies decoded wrongly", failures, N_CHUNKED);
}

/* RFC 9112 7.1.1: chunk = chunk-size [ chunk-ext ] CRLF, and chunk-ext is
 * *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] ): after the
 * size's digits only whitespace then ';' may come. "3 garbage" or "3 4" is
 * not a chunk size line, and a parser that reads it differently (as 0x34,
 * or as an error) would frame the body differently. */
static const struct chunked_case size_then_garbage[] = {
    CH_NO("space_then_garbage", 400, "3 garbage\r\nabc\r\n0\r\n\r\n"),
    CH_NO("space_then_digit", 400, "3 4\r\nabc\r\n0\r\n\r\n"),
    CH_NO("tab_then_garbage", 400, "3\tx\r\nabc\r\n0\r\n\r\n"),
};

static void chunk_size_then_garbage_is_refused(void **state)
{
    int failures = 0;
    for (size_t i = 0; i < sizeof(size_then_garbage) / sizeof(size_then_garbage[0]); i++) {
        const struct chunked_case *c = &size_then_garbage[i];
        struct decoded r = decode(c->in, c->len, c->out_cap, c->max_trailer, 0, 0);
        failures += !decoded_ok(c, &r, "whole");
        free(r.out);
    }
    if (failures)
        fail_msg("%d chunk size lines with garbage after the size were accepted", failures);
}

static void chunked_limits_are_exact(void **state)
{
    /* data of exactly out_cap bytes fits, also after earlier output */
    static const char body[] = "5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n";
    struct decoded r = decode(body, sizeof(body) - 1, 10, 0, 0, 0);
    assert_int_equal(r.consumed, sizeof(body) - 1);
    assert_int_equal(r.out_len, 10);
    free(r.out);
    r = decode(body, sizeof(body) - 1, 9, 0, 0, 0);
    assert_int_equal(r.consumed, -1);
    assert_int_equal(r.status, 413);
    free(r.out);
    /* trailers of exactly max_trailer bytes ("A: b\r\n" is 6) */
    static const char tr[] = "0\r\nA: b\r\n\r\n";
    r = decode(tr, sizeof(tr) - 1, 16, 6, 0, 0);
    assert_int_equal(r.consumed, sizeof(tr) - 1);
    assert_true(r.done);
    free(r.out);
    r = decode(tr, sizeof(tr) - 1, 16, 5, 1, 0);
    assert_int_equal(r.consumed, -1);
    assert_int_equal(r.status, 431);
    free(r.out);
    /* a chunk line of 4096 bytes after the size (extensions and CR) is
     * accepted, a longer one refused */
    char *ext = malloc(5000);
    assert_non_null(ext);
    for (size_t n = 4095; n <= 4096; n++) {
        ext[0] = '0';
        ext[1] = ';'; /* one extension with a long name */
        memset(ext + 2, 'a', n - 1);
        memcpy(ext + 1 + n, "\r\n\r\n", 4);
        r = decode(ext, n + 5, 16, 16, 0, 0);
        if (n <= 4095 ? r.consumed != (long)(n + 5) : r.status != 400)
            fail_msg("extension of %zu bytes: consumed %ld status %d", n, r.consumed, r.status);
        free(r.out);
    }
    free(ext);
}

static void chunked_after_done(void **state)
{
    struct http_chunked d;
    http_chunked_init(&d);
    char out[16];
    size_t out_len = 0;
    int done = 0, status = 0;
    const char *why = NULL;
    static const char in[] = "2\r\nok\r\n0\r\n\r\nNEXT";
    long rc = http_chunked_decode(&d, in, sizeof(in) - 1, out, &out_len, sizeof(out), 64, &done,
                                  &status, &why);
    assert_int_equal(rc, sizeof(in) - 1 - 4);
    assert_true(done);
    assert_int_equal(out_len, 2);
    /* called again with what follows: nothing is consumed, still done */
    done = 0;
    rc = http_chunked_decode(&d, "NEXT", 4, out, &out_len, sizeof(out), 64, &done, &status, &why);
    assert_int_equal(rc, 0);
    assert_true(done);
    assert_int_equal(out_len, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(table_heads_accepted_or_refused),
        cmocka_unit_test(table_heads_fed_byte_by_byte),
        cmocka_unit_test(get_with_host),
        cmocka_unit_test(http10_without_host),
        cmocka_unit_test(post_with_content_length),
        cmocka_unit_test(duplicate_identical_content_length),
        cmocka_unit_test(chunked_head),
        cmocka_unit_test(request_target_forms),
        cmocka_unit_test(leading_empty_lines),
        cmocka_unit_test(ows_is_trimmed),
        cmocka_unit_test(obs_text_in_values),
        cmocka_unit_test(many_fields_up_to_the_limit),
        cmocka_unit_test(keep_alive_rules),
        cmocka_unit_test(expect_continue),
        cmocka_unit_test(smuggling_requests_of_the_issue),
        cmocka_unit_test(refusal_reasons),
        cmocka_unit_test(target_too_long),
        cmocka_unit_test(head_too_large),
        cmocka_unit_test(tchar_is_the_rfc_set),
        cmocka_unit_test(chunked_bodies),
        cmocka_unit_test(chunk_size_then_garbage_is_refused),
        cmocka_unit_test(chunked_limits_are_exact),
        cmocka_unit_test(chunked_after_done),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
#endif /* HTTP_PARSE_CASES_ONLY */
