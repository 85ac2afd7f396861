/* What run.json says about the machine a run measured. */
#include "config.h"

#include "harness/run-impl.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

/* The first "model name" of /proc/cpuinfo (x86), or "unknown". */
static void cpu_model(char *buf, size_t len) {
    snprintf(buf, len, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) != 0) continue;
        char *c = strchr(line, ':');
        if (!c) continue;
        c++;
        while (*c == ' ' || *c == '\t') c++;
        c[strcspn(c, "\n")] = 0;
        snprintf(buf, len, "%s", c);
        break;
    }
    fclose(f);
}

/* NVIDIA's driver lists each GPU under /proc/driver/nvidia/gpus/<bus id>/information. */
static void gpu_model(char *buf, size_t len) {
    snprintf(buf, len, "none");
    DIR *d = opendir("/proc/driver/nvidia/gpus");
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[512], line[256];
        snprintf(path, sizeof path, "/proc/driver/nvidia/gpus/%s/information", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        while (fgets(line, sizeof line, f)) {
            if (strncmp(line, "Model:", 6) != 0) continue;
            char *c = line + 6;
            while (*c == ' ' || *c == '\t') c++;
            c[strcspn(c, "\n")] = 0;
            snprintf(buf, len, "%s", c);
        }
        fclose(f);
        break;
    }
    closedir(d);
}

json_t *harness_machine_json(void) {
    char cpu[256], gpu[256], kernel[256] = "unknown";
    cpu_model(cpu, sizeof cpu);
    gpu_model(gpu, sizeof gpu);
    struct utsname u;
    if (uname(&u) == 0)
        snprintf(kernel, sizeof kernel, "%s %s %s", u.sysname, u.release, u.machine);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    json_int_t mem = pages > 0 && page > 0 ? (json_int_t)pages * page : 0;
    return json_pack("{s:s, s:i, s:I, s:s, s:s}", "cpu_model", cpu, "n_cores",
                     cores > 0 ? (int)cores : 0, "memory_bytes", mem, "kernel", kernel, "gpu", gpu);
}
