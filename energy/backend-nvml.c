/* backend-nvml.c: NVIDIA GPUs through NVML, loaded at run time with dlopen (no build dependency).
 * GPUs with nvmlDeviceGetTotalEnergyConsumption (Volta and newer) read that counter (mJ since the
 * driver loaded); the others integrate nvmlDeviceGetPowerUsage (mW) over the reads by trapezoid
 * into a µJ counter (the driver averages power over up to ~1 s, so attribution is coarse). */
#include "config.h"

#include "energy/meter-impl.h"

#include "common/jb-err.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NVML_MAX_GPUS 16

struct gpu {
    void *dev;
    bool has_energy;
    double acc_uj;   /* integrated power, for GPUs without the energy counter */
    double last_w;
    double last_t;
};

struct nvml {
    struct nvml_api api;
    void *lib; /* dlopen handle, or NULL for an injected api */
    int n;
    struct gpu gpu[NVML_MAX_GPUS];
};

static double mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int nvml_read(struct meter_backend *b, uint64_t *raw, double t_s) {
    struct nvml *nv = b->priv;
    int rc = 0;
    for (int i = 0; i < nv->n; i++) {
        struct gpu *g = &nv->gpu[i];
        if (g->has_energy) {
            unsigned long long mj = 0;
            if (nv->api.total_energy_mj(g->dev, &mj) != 0) rc = JB_EIO;
            raw[i] = (uint64_t)mj;
        } else {
            unsigned mw = 0;
            if (nv->api.power_mw(g->dev, &mw) != 0) {
                rc = JB_EIO;
                mw = (unsigned)(g->last_w * 1000.0);
            }
            double t = t_s, w = mw / 1000.0;
            g->acc_uj += 0.5 * (w + g->last_w) * (t - g->last_t) * 1e6;
            g->last_w = w;
            g->last_t = t;
            raw[i] = (uint64_t)g->acc_uj;
        }
    }
    return rc;
}

static void nvml_close(struct meter_backend *b) {
    if (!b) return;
    struct nvml *nv = b->priv;
    if (nv) {
        nv->api.shutdown();
        if (nv->lib) dlclose(nv->lib);
    }
    free(nv);
    free(b);
}

int backend_nvml_open_api(struct meter_backend **out, const struct nvml_api *api,
                          struct jb_err *err) {
    *out = NULL;
    if (api->init() != 0)
        return jb_err_set(err, JB_EUNSUPPORTED,
                          "nvmlInit failed: the NVIDIA driver is installed but not running "
                          "(check nvidia-smi)");
    unsigned count = 0;
    if (api->device_count(&count) != 0 || count == 0) {
        api->shutdown();
        return jb_err_set(err, JB_EUNSUPPORTED, "NVML reports no NVIDIA GPU");
    }
    struct meter_backend *b = calloc(1, sizeof *b);
    struct nvml *nv = calloc(1, sizeof *nv);
    if (!b || !nv) {
        free(b);
        free(nv);
        api->shutdown();
        return jb_err_set(err, JB_ENOMEM, "out of memory");
    }
    nv->api = *api;
    b->name = "nvml";
    b->source = METER_SOURCE_MEASURED;
    b->read = nvml_read;
    b->close = nvml_close;
    b->priv = nv;
    double t = mono_s();
    for (unsigned i = 0; i < count && nv->n < NVML_MAX_GPUS; i++) {
        struct gpu *g = &nv->gpu[nv->n];
        if (api->device_handle(i, &g->dev) != 0) continue;
        unsigned long long mj = 0;
        unsigned mw = 0;
        g->has_energy = api->total_energy_mj(g->dev, &mj) == 0;
        if (!g->has_energy && api->power_mw(g->dev, &mw) != 0) continue; /* no figure at all */
        g->last_w = g->has_energy ? 0 : mw / 1000.0;
        g->last_t = t;
        struct backend_domain *d = &b->dom[nv->n];
        snprintf(d->name, sizeof d->name, "gpu%u", i);
        d->kind = METER_DOMAIN_GPU;
        d->parent = -1;
        d->scale_j = g->has_energy ? 1e-3 : 1e-6;
        d->range = 0;
        d->resolution_s = g->has_energy ? 0.02 : 1.0;
        nv->n++;
    }
    b->n = nv->n;
    if (b->n == 0) {
        nvml_close(b);
        return jb_err_set(err, JB_EUNSUPPORTED,
                          "NVML found %u GPU(s) but none reports energy or power", count);
    }
    int n_int = 0;
    for (int i = 0; i < nv->n; i++) n_int += !nv->gpu[i].has_energy;
    if (n_int)
        snprintf(b->model, sizeof b->model,
                 "%d GPU(s) without an energy counter: power integrated over the sampler "
                 "(measured:nvml-power-integrated)", n_int);
    *out = b;
    return 0;
}

int backend_nvml_open(struct meter_backend **out, const struct meter_opts *o, struct jb_err *err) {
    (void)o;
    *out = NULL;
    void *lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib)
        return jb_err_set(err, JB_EUNSUPPORTED,
                          "no NVIDIA driver: libnvidia-ml.so.1 not found (install the NVIDIA "
                          "driver to measure NVIDIA GPUs)");
    struct nvml_api api;
    /* POSIX dlsym returns object pointers; converting them to function pointers is how every
     * dlopen user does it */
#define SYM(field, name)                                            \
    do {                                                            \
        void *s_ = dlsym(lib, name);                                \
        if (!s_) goto missing;                                      \
        memcpy(&api.field, &s_, sizeof s_);                         \
    } while (0)
    const char *miss = NULL;
    SYM(init, "nvmlInit_v2");
    SYM(shutdown, "nvmlShutdown");
    SYM(device_count, "nvmlDeviceGetCount_v2");
    SYM(device_handle, "nvmlDeviceGetHandleByIndex_v2");
    SYM(device_name, "nvmlDeviceGetName");
    SYM(total_energy_mj, "nvmlDeviceGetTotalEnergyConsumption");
    SYM(power_mw, "nvmlDeviceGetPowerUsage");
#undef SYM
    int rc = backend_nvml_open_api(out, &api, err);
    if (rc < 0) {
        dlclose(lib);
        return rc;
    }
    ((struct nvml *)(*out)->priv)->lib = lib;
    return 0;
missing:
    miss = dlerror();
    dlclose(lib);
    return jb_err_set(err, JB_EUNSUPPORTED, "libnvidia-ml.so.1 is too old: %s",
                      miss ? miss : "a symbol is missing");
}
