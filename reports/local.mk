noinst_LIBRARIES += reports/libreports.a
reports_libreports_a_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS) $(CAIRO_CFLAGS) $(SQLITE3_CFLAGS)
reports_libreports_a_SOURCES = \
	reports/compare.c \
	reports/fmt-csv.c \
	reports/fmt-html.c \
	reports/svg.c \
	reports/fmt-md.c \
	reports/history.c \
	reports/record.c \
	reports/render.c \
	reports/reports-impl.h \
	reports/reports.h \
	reports/run.c \
	reports/stats.c
REPORTS_LIBS = reports/libreports.a $(SQLITE3_LIBS) -lm
