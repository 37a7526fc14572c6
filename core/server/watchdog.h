/* The watchdog: the last line of defence against a worker that no longer
 * turns its event loop (a script stuck in C, a bug). A thread of its own
 * watches one slot per worker, which the worker's loop beats several times a
 * second, and one for the main thread, which is marked busy while it loads
 * scripts. A slot that has not moved for the hard limit is logged (request
 * id, campaign, script, what was running) and the process exits with
 * WATCHDOG_EXIT so that the service manager restarts it: a wedged process
 * would otherwise keep its share of the port and ignore SIGTERM.
 *
 * After SIGTERM the watchdog also bounds the shutdown: the process exits by
 * the deadline it is given, stuck worker or not. */
#ifndef WX_WATCHDOG_H
#define WX_WATCHDOG_H

#define WATCHDOG_EXIT 70 /* EX_SOFTWARE: "stopped by the watchdog" */

struct event_base;
struct watchdog_slot;

/* Starts the watchdog thread with n worker slots plus the main thread's
 * slot; hard_ms is the limit. 0 ok, -1 if the thread cannot start. */
int watchdog_start(int n_workers, int hard_ms);
/* Stops the thread (at a normal exit). */
void watchdog_stop(void);

/* The slot of worker i, or of the main thread (i = -1); NULL before start. */
struct watchdog_slot *watchdog_slot(int i);

/* Beats the slot from base's loop until watchdog_unwatch: a timer. */
int watchdog_watch(struct watchdog_slot *s, struct event_base *base);
/* The loop has ended on purpose: the slot is no longer checked. */
void watchdog_unwatch(struct watchdog_slot *s);

/* Marks the slot busy from now (for a thread without a loop to beat, such
 * as the main thread loading scripts) or idle again. */
void watchdog_busy(struct watchdog_slot *s, const char *what);
void watchdog_idle(struct watchdog_slot *s);

/* What the thread is doing, for the log line if it gets stuck: the request
 * it serves (rid, method and path: copied), and the script it runs: what
 * ("lua hook login"), of whom (a campaign or route, or NULL) and the file.
 * Those three are not copied: they must live until the next note, which
 * watchdog_note_script(s, NULL, NULL, NULL) clears. */
void watchdog_note_request(struct watchdog_slot *s, const char *rid, const char *method,
                           const char *path);
void watchdog_note_script(struct watchdog_slot *s, const char *what, const char *of,
                          const char *file);

/* SIGTERM: exit with WATCHDOG_EXIT if the process is still here in ms. */
void watchdog_deadline(int ms);

#endif
