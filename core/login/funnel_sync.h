/* Sharing the funnel (funnel.h) between instances through the store.
 *
 * Every second one worker folds the cells into the aggregate (so that counts
 * land in the minute they happened) and, with a Redis store, writes the
 * aggregate as this instance's record when it changed. An instance is named
 * by host name and public port; its record lives under a slot number:
 *   fs:count        the highest slot handed out (INCR)
 *   fs:slot:NODE    NODE's slot (added once)
 *   fs:n:SLOT       that instance's record (funnel_record), no expiry
 * A restarted instance finds its slot, loads its record back, and writes
 * only after that. Readers sum their live aggregate and every other slot's
 * record, so each instance shows the whole fleet (up to a second behind for
 * the others). The memory store is one process's: nothing is written. */
#ifndef WX_FUNNEL_SYNC_H
#define WX_FUNNEL_SYNC_H

#include "store.h"

struct event_base;
struct funnel_view;

/* Starts the ticks on base's loop (one worker's); store may be NULL. */
int funnel_sync_start(store_conn_t *store, struct event_base *base, int public_port);
void funnel_sync_stop(void);
/* Writes the record now if it changed (on the ticking loop, when stopping). */
void funnel_sync_flush(void);

/* Builds the fleet's view and hands it to cb (which frees it), on c's loop
 * or at once with the memory store. */
typedef void (*funnel_collect_cb)(struct funnel_view *v, void *arg);
void funnel_collect(store_conn_t *c, funnel_collect_cb cb, void *arg);

#endif
