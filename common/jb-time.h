/* jb-time.h: monotonic time for phases and samples, wall time for records.
 *
 *     double t0 = jb_time_now_s();
 *     work();
 *     printf("%.3f s\n", jb_time_now_s() - t0);
 */
#ifndef JB_TIME_H
#define JB_TIME_H

#include <stdint.h>

/* CLOCK_MONOTONIC in nanoseconds / seconds: never jumps, for durations. */
uint64_t jb_time_now_ns(void);
double jb_time_now_s(void);

/* CPU time of the calling thread (CLOCK_THREAD_CPUTIME_ID), seconds: for sampler overhead. */
double jb_time_thread_cpu_s(void);
/* CPU time of the whole process, every thread (CLOCK_PROCESS_CPUTIME_ID: user + system),
 * seconds: the work counter of `run`'s samples. */
double jb_time_process_cpu_s(void);

/* Sleeps for s seconds (restarting on signals). */
void jb_time_sleep_s(double s);

/* UTC wall clock as ISO 8601 "2026-11-23T12:50:12Z" into buf (at least 21 bytes). */
void jb_time_iso8601(char *buf, unsigned long len);

#endif /* JB_TIME_H */
