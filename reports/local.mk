noinst_LIBRARIES += reports/libreports.a
reports_libreports_a_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS) $(CAIRO_CFLAGS)
reports_libreports_a_SOURCES = \
	reports/fmt-csv.c \
	reports/reports.h
REPORTS_LIBS = reports/libreports.a
