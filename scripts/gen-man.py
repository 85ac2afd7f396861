#!/usr/bin/python3
"""Writes doc/joulebench.1, the manual page, from the built program's own --help texts, so that
the two say the same thing (tests/test-harness.c checks that every option of every command's
--help is in the page and the page names no other). Run after changing a --help text:

    scripts/gen-man.py build/release/joulebench > doc/joulebench.1

A development tool: the page is committed and installed by `make install`; users never run this.
"""
import re
import subprocess
import sys

DATE = "2026-12-04"


def esc(s):
    """Text for a roff line: backslashes and hyphens escaped, leading dot or quote guarded."""
    s = s.replace("\\", "\\e").replace("-", "\\-")
    if s.startswith(".") or s.startswith("'"):
        s = "\\&" + s
    return s


def help_of(jb, *args):
    return subprocess.run([jb, *args], check=True, capture_output=True, text=True).stdout


def section(jb, cmd, summary):
    text = help_of(jb, cmd, "--help").rstrip("\n").split("\n")
    out = [f'.SS "joulebench {cmd}"', esc(summary[0].upper() + summary[1:]) + ".", ".PP", ".nf"]
    i = 0
    while i < len(text) and (text[i].startswith("usage:") or text[i].startswith("       ")
                             or (i > 0 and text[i].startswith(" ") and not text[i].startswith("  -"))
                             and text[i - 1].strip() and i < 6):
        out.append(esc(text[i].replace("usage: ", "", 1).strip()))
        i += 1
    out.append(".fi")
    para = []

    def flush():
        if para:
            out.append(".PP")
            out.extend(esc(p) for p in para)
            para.clear()

    opt = None
    while i < len(text):
        line = text[i]
        i += 1
        m = re.match(r"^  (-\S.*?)(?:\s{2,}(.*))?$", line)
        if m and not line.startswith("   "):
            flush()
            out.append(".TP")
            out.append(".B " + esc(m.group(1).strip()))
            if m.group(2):
                out.append(esc(m.group(2).strip()))
            opt = True
            continue
        if opt and line.startswith("   ") and line.strip():
            out.append(esc(line.strip()))
            continue
        opt = None
        if not line.strip():
            flush()
            continue
        if line.startswith("  "):
            # an indented list inside the description keeps its lines
            flush()
            out.append(".PP")
            out.append(".nf")
            out.append(esc(line.rstrip()))
            while i < len(text) and text[i].startswith("  ") and not text[i].lstrip().startswith("-"):
                out.append(esc(text[i].rstrip()))
                i += 1
            out.append(".fi")
            continue
        para.append(line.strip())
    flush()
    return out


def main():
    jb = sys.argv[1] if len(sys.argv) > 1 else "build/release/joulebench"
    top = help_of(jb, "--help")
    version = help_of(jb, "--version").split("\n")[0].split(" (")[0].strip()
    cmds = re.findall(r"^  ([a-z][a-z-]*)\s+(.*)$", top.split("global options:")[0], re.M)
    o = [f'.TH JOULEBENCH 1 "{DATE}" "{esc(version)}" "User Commands"',
         ".SH NAME",
         "joulebench \\- accuracy per joule and CO2 of vision\\-language models on chart, document"
         " and image benchmarks",
         ".SH SYNOPSIS",
         ".B joulebench",
         "[\\fB\\-v\\fR|\\fB\\-q\\fR] \\fICOMMAND\\fR [\\fIOPTIONS\\fR]",
         ".br",
         ".B joulebench",
         "\\fB\\-\\-version\\fR | \\fBhelp\\fR [\\fICOMMAND\\fR]",
         ".SH DESCRIPTION",
         "joulebench runs a C inference engine for Ai2's Molmo vision\\-language models on chart,",
         "document and image benchmarks, samples the machine's energy counters (RAPL through",
         "powercap or PAPI, the perf power PMU, NVML on NVIDIA GPUs) while it does, and reports",
         "accuracy, joules per answer, score per kJ and estimated CO2e per sample, per phase",
         "(image encoding, prefill, decode) and per run. Every energy figure says where it came",
         "from: \\fBmeasured\\fR (which backend and domains) or \\fBestimated\\fR (which model),",
         "marked with a tilde (~). Each sample also records work counters that need no meter",
         "(crops, image, prompt and generated tokens, FLOP and weight bytes counted from the",
         "model's shapes, CPU seconds), which \\fBcompare\\fR gates on CI runners without",
         "energy counters.",
         ".PP",
         "With no arguments, \\fBjoulebench run\\fR evaluates the embedded default checkpoint on",
         "the embedded synthetic suites, offline, and writes its reports.",
         ".SH GLOBAL OPTIONS"]
    glob = top.split("global options:")[1].split("\n\n")[0].strip("\n").split("\n")
    for line in glob:
        m = re.match(r"^  (\S.*?)\s{2,}(.*)$", line)
        if m:
            o += [".TP", ".B " + esc(m.group(1)), esc(m.group(2))]
    o.append(".SH COMMANDS")
    for name, summary in cmds:
        o += section(jb, name, summary.strip())
    o += [".SH EXIT STATUS",
          ".TP", ".B 0", "success (for \\fBcompare\\fR: no significant regression)",
          ".TP", ".B 1", "a negative verdict: \\fBcompare\\fR found a regression",
          ".TP", ".B 2", "an error: bad input, an unreadable file or counter; the message names"
          " the file and the problem",
          ".TP", ".B 130, 143", "interrupted by SIGINT or SIGTERM; what finished is kept",
          ".SH FILES",
          ".TP", ".I RUN/run.json",
          "the run's summary: tool version and commit, machine, models, meter, carbon factor, and"
          " per model and suite: accuracy with its 95% interval, energy per phase, joules per"
          " sample, score per kJ, CO2e and the work per sample",
          ".TP", ".I RUN/samples.jsonl",
          "one fsynced line per sample: prediction, references, score, tokens, seconds and joules"
          " per phase, the energy source, CPU seconds and the work counters",
          ".TP", ".I RUN/power.csv", "the power trace: t_s,domain,watts",
          ".TP", ".I RUN/report.md, report.html, report.csv", "the reports",
          ".SH ENVIRONMENT",
          ".TP", ".B OPENBLAS_NUM_THREADS",
          "read by OpenBLAS when \\fB\\-\\-threads\\fR is not given",
          ".SH EXAMPLES",
          "The embedded default: two points per suite on the accuracy\\-against\\-energy plot.",
          ".PP", ".nf", "joulebench run --out results/first".replace("-", "\\-"), ".fi",
          ".PP", "A CI gate between a base and a head commit (see docs/ci.md):",
          ".PP", ".nf",
          esc("joulebench run --out base --limit 10 --meter estimate --threads 1"),
          esc("joulebench run --out head --limit 10 --meter estimate --threads 1"),
          esc("joulebench compare base head --gate-estimated --markdown comment.md"),
          esc("joulebench history ci.sqlite --add head --html trend.html"), ".fi",
          ".SH SEE ALSO",
          "The README and docs/ci.md of the joulebench source; \\fBperf\\-stat\\fR(1)."]
    print("\n".join(o))


if __name__ == "__main__":
    main()
