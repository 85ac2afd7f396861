#include "config.h"

#include "harness/harness.h"

#include "common/jb-err.h"
#include "common/jb-log.h"
#include "energy/meter.h"

void harness_log_meter_notes(const struct meter *m) {
    for (int i = 0; i < meter_n_notes(m); i++) {
        int code = 0;
        const char *msg = meter_note(m, i, &code);
        if (code == JB_EPERM || code == JB_EINVAL)
            jb_log(JB_LOG_WARN, "%s", msg);
        else
            jb_log(JB_LOG_INFO, "%s", msg);
    }
}
