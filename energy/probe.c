#include "config.h"

#include "energy/meter.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef HAVE_PAPI
#include <papi.h>
#endif

const char *meter_source_name(enum meter_source s) {
    return s == METER_SOURCE_MEASURED ? "measured" : "estimated";
}

static void set(struct meter_backend_status *st, const char *name, enum meter_source src,
                bool ok, const char *detail) {
    st->name = name;
    st->source = src;
    st->available = ok;
    snprintf(st->detail, sizeof st->detail, "%s", detail);
}

static void probe_powercap(struct meter_backend_status *st, const char *sys) {
#ifndef HAVE_POWERCAP
    (void)sys;
    set(st, "powercap", METER_SOURCE_MEASURED, false,
        "built without libpowercap: apt-get install libpowercap-dev, then configure --with-powercap");
#else
    char path[256];
    snprintf(path, sizeof path, "%.200s/class/powercap/intel-rapl:0/energy_uj", sys);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        close(fd);
        set(st, "powercap", METER_SOURCE_MEASURED, true, "RAPL zones in /sys/class/powercap");
        return;
    }
    if (errno == EACCES || errno == EPERM) {
        snprintf(st->detail, sizeof st->detail,
                 "%s is readable by root only (since the 2020 RAPL side-channel fix, "
                 "CVE-2020-8694): run as root, or grant read access with "
                 "'chmod a+r %.200s/class/powercap/intel-rapl:*/energy_uj' or a udev rule", path, sys);
        st->name = "powercap";
        st->source = METER_SOURCE_MEASURED;
        st->available = false;
        return;
    }
    set(st, "powercap", METER_SOURCE_MEASURED, false,
        "no RAPL zones in /sys/class/powercap: this kernel, CPU or virtual machine does not "
        "expose RAPL (hypervisors usually hide it)");
#endif
}

static void probe_perf(struct meter_backend_status *st, const char *sys) {
    char path[512];
    struct stat sb;
    snprintf(path, sizeof path, "%s/bus/event_source/devices/power/type", sys);
    if (stat(path, &sb) == 0)
        set(st, "perf", METER_SOURCE_MEASURED, true, "power PMU in /sys/bus/event_source/devices");
    else
        set(st, "perf", METER_SOURCE_MEASURED, false,
            "no 'power' PMU in /sys/bus/event_source/devices: the CPU or virtual machine exposes "
            "no RAPL perf events");
}

static void probe_papi(struct meter_backend_status *st) {
#ifndef HAVE_PAPI
    set(st, "papi", METER_SOURCE_MEASURED, false,
        "built without PAPI: apt-get install libpapi-dev, then configure --with-papi");
#else
    if (PAPI_library_init(PAPI_VER_CURRENT) != PAPI_VER_CURRENT) {
        set(st, "papi", METER_SOURCE_MEASURED, false, "PAPI failed to initialise");
        return;
    }
    int have = 0;
    for (int cid = 0; cid < PAPI_num_components(); cid++) {
        const PAPI_component_info_t *ci = PAPI_get_component_info(cid);
        if (ci && (strcmp(ci->name, "powercap") == 0 || strcmp(ci->name, "rapl") == 0) &&
            !ci->disabled)
            have = 1;
    }
    if (have)
        set(st, "papi", METER_SOURCE_MEASURED, true, "PAPI powercap/rapl component");
    else
        set(st, "papi", METER_SOURCE_MEASURED, false,
            "this PAPI was built without its powercap and rapl components (Debian's is): build "
            "PAPI from source with ./configure --with-components=\"powercap rapl\"");
    PAPI_shutdown();
#endif
}

static void probe_nvml(struct meter_backend_status *st) {
    void *h = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        set(st, "nvml", METER_SOURCE_MEASURED, false,
            "no NVIDIA driver: libnvidia-ml.so.1 not found");
        return;
    }
    dlclose(h);
    set(st, "nvml", METER_SOURCE_MEASURED, true, "NVIDIA driver found (libnvidia-ml.so.1)");
}

int meter_backends_probe(struct meter_backend_status *out, int max, const char *sysfs_root) {
    const char *sys = sysfs_root ? sysfs_root : "/sys";
    struct meter_backend_status all[METER_MAX_BACKENDS];
    int n = 0;
    probe_powercap(&all[n++], sys);
    probe_perf(&all[n++], sys);
    probe_papi(&all[n++]);
    probe_nvml(&all[n++]);
    set(&all[n++], "estimate", METER_SOURCE_ESTIMATED, true,
        "CPU utilisation from /proc/stat x TDP: an estimate, always labelled so");
    if (n > max) n = max;
    memcpy(out, all, (size_t)n * sizeof *out);
    return n;
}
