noinst_LIBRARIES += energy/libenergy.a
energy_libenergy_a_CFLAGS = $(AM_CFLAGS) $(POWERCAP_CFLAGS) $(PAPI_CFLAGS)
energy_libenergy_a_SOURCES = \
	energy/backend-estimate.c \
	energy/backend-nvml.c \
	energy/backend-papi.c \
	energy/backend-perf.c \
	energy/backend-powercap.c \
	energy/carbon.c \
	energy/counters-papi.c \
	energy/meter-impl.h \
	energy/meter.c \
	energy/meter.h \
	energy/probe.c
nodist_energy_libenergy_a_SOURCES = energy/carbon-table.h
ENERGY_LIBS = energy/libenergy.a $(POWERCAP_LIBS) $(PAPI_LIBS)

# The carbon table is data (energy/carbon-intensity.csv, the source of truth, shipped in the
# tarball); the build turns it into C rows so an installed binary carries it. A row without its
# five fields stops the build.
EXTRA_DIST += energy/carbon-intensity.csv
BUILT_SOURCES += energy/carbon-table.h
CLEANFILES += energy/carbon-table.h
energy/carbon-table.h: $(top_srcdir)/energy/carbon-intensity.csv
	$(AM_V_GEN)mkdir -p energy && $(AWK) -F, ' \
	  NR == 1 { next } \
	  NF != 5 || $$3 !~ /^[0-9.]+$$/ || $$5 !~ /^[0-9]+$$/ { \
	    printf "%s:%d: want region,name,g_per_kwh,source,year\n", FILENAME, NR > "/dev/stderr"; \
	    bad = 1; exit 1 } \
	  { printf "    {\"%s\", \"%s\", %s, \"%s\", %s},\n", $$1, $$2, $$3, $$4, $$5 } \
	  END { if (bad) exit 1 }' $(top_srcdir)/energy/carbon-intensity.csv > $@.tmp && mv -f $@.tmp $@
# carbon.c includes the generated table: made first for `make joulebench` alone too
# (BUILT_SOURCES only applies to `make all` and `make check`).
$(energy_libenergy_a_OBJECTS): energy/carbon-table.h
