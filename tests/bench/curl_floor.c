/* wxgate_curl_floor: what libcurl alone holds per call waiting on WeChat
 * (issue 11). Starts N GET transfers with the options core/wechat/fetch.c
 * sets that bear on memory (1 KiB receive buffer, no signals) on one multi
 * handle, against a slow URL (the sandbox with a latency fault), and
 * reports (RSS when all N are in flight - RSS before) / N. bench_login.sh
 * prints it next to the gateway's figure: the gateway cannot hold a waiting
 * login in less than libcurl holds its call.
 *
 *   wxgate_curl_floor URL N
 *
 * Prints one JSON line: {"transfers", "rss_start_kb", "rss_kb",
 * "kib_per_transfer", "completed"}. Link with the same allocator as wxgate
 * (jemalloc) for a like-for-like figure. */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = 0;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            v = atol(line + 6);
    if (f)
        fclose(f);
    return v;
}

static size_t discard(char *p, size_t size, size_t n, void *arg)
{
    (void)p;
    (void)arg;
    return size * n;
}

int main(int argc, char **argv)
{
    if (argc != 3 || atoi(argv[2]) <= 0) {
        fprintf(stderr, "usage: wxgate_curl_floor URL N\n");
        return 2;
    }
    int n = atoi(argv[2]);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURLM *multi = curl_multi_init();
    curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, 512L);
    long start = rss_kb();
    for (int i = 0; i < n; i++) {
        CURL *e = curl_easy_init();
        if (!e)
            return 1;
        curl_easy_setopt(e, CURLOPT_URL, argv[1]);
        curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 1024L);
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 60000L);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
        curl_multi_add_handle(multi, e);
    }
    /* Every transfer connected and sent before the first reply comes back
     * (the URL waits seconds): the peak RSS is all N waiting. */
    int running = 1, completed = 0;
    long peak = start;
    while (running) {
        curl_multi_perform(multi, &running);
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(multi, &left)))
            if (m->msg == CURLMSG_DONE) {
                completed += m->data.result == CURLE_OK;
                curl_multi_remove_handle(multi, m->easy_handle);
                curl_easy_cleanup(m->easy_handle);
            }
        long r = rss_kb();
        if (r > peak && completed == 0)
            peak = r;
        curl_multi_poll(multi, NULL, 0, 50, NULL);
    }
    printf("{\"transfers\":%d,\"rss_start_kb\":%ld,\"rss_kb\":%ld,\"kib_per_transfer\":%.3f,"
           "\"completed\":%d}\n",
           n, start, peak, (double)(peak - start) / n, completed);
    curl_multi_cleanup(multi);
    curl_global_cleanup();
    return completed == n ? 0 : 1;
}
