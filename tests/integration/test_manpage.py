"""The man page wxgate(8) (man/wxgate.8, written by hand) matches the real
command line: every option that a help text shows (wxgate --help and each
command's --help) is described in it, it names no option the help texts do
not know, and man renders it without a warning (what lintian checks)."""
import os
import re
import shutil
import subprocess

import pytest

from conftest import BIN, ROOT

MAN = os.path.join(ROOT, "man", "wxgate.8")
COMMANDS = ([], ["run"], ["check"], ["sandbox"], ["demo"])


def help_text(cmd):
    p = subprocess.run([BIN] + cmd + ["--help"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, (cmd, p.stderr)
    assert p.stdout.startswith("usage: wxgate"), p.stdout
    return p.stdout


def help_options():
    found = set()
    for cmd in COMMANDS:
        text = help_text(cmd)
        found |= set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*|-[a-z])\b", text))
    return found | {"--help", "-h"}


def man_options():
    with open(MAN, encoding="utf-8") as f:
        # roff escapes each hyphen of an option: \-\-ca\-dir
        text = f.read().replace("\\-", "-")
    text = "\n".join(l for l in text.splitlines() if not l.startswith('.\\"'))
    return set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*|-[a-z])\b", text))


def test_every_help_option_is_in_the_man_page():
    missing = help_options() - man_options()
    assert not missing, "not in man/wxgate.8: %s" % sorted(missing)


def test_the_man_page_names_no_unknown_option():
    unknown = man_options() - help_options()
    assert not unknown, "in man/wxgate.8 but in no help text: %s" % sorted(unknown)


def test_every_long_option_of_the_parsers_is_in_the_help():
    """The help texts are the reference above: each command's option table
    (core/cmd/*.c) must show up in its help."""
    src = ""
    for name in ("main.c", "sandbox_cmd.c", "demo_cmd.c"):
        with open(os.path.join(ROOT, "core", "cmd", name), encoding="utf-8") as f:
            src += f.read()
    table = {"--" + m for m in re.findall(r'\{"([a-z][a-z-]*)", (?:\'[a-z]\'|0), ', src)}
    assert table, "no option tables found in core/cmd"
    assert not table - help_options(), sorted(table - help_options())


def test_the_man_page_names_this_version():
    version = subprocess.run([BIN, "version"], capture_output=True, text=True).stdout.split()[1]
    with open(MAN, encoding="utf-8") as f:
        th = next(l for l in f if l.startswith(".TH "))
    assert '"wxgate %s"' % version in th, th


def test_man_renders_without_warnings():
    if not shutil.which("man"):
        pytest.skip("man is not installed")
    p = subprocess.run(["man", "--warnings", "-E", "UTF-8", "-l", "-Tutf8", "-Z", MAN],
                       capture_output=True, text=True,
                       env=dict(os.environ, LC_ALL="C.UTF-8", MANROFFSEQ="", MANWIDTH="80"))
    assert p.returncode == 0 and not p.stderr.strip(), p.stderr
