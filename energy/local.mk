noinst_LIBRARIES += energy/libenergy.a
energy_libenergy_a_CFLAGS = $(AM_CFLAGS) $(POWERCAP_CFLAGS) $(PAPI_CFLAGS)
energy_libenergy_a_SOURCES = \
	energy/meter.h \
	energy/probe.c
ENERGY_LIBS = energy/libenergy.a $(POWERCAP_LIBS) $(PAPI_LIBS)
